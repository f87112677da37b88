package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/parti-io/parti/internal/embedded"
	"github.com/parti-io/parti/internal/jsretry"
	"github.com/parti-io/parti/projection"
)

// cluster is three embedded JetStream servers on loopback, routed to each
// other, in the driver's process (so the driver's RSS and CPU are the
// servers').
type cluster struct {
	servers []*server.Server
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startCluster starts the three servers storing under dir and waits for a
// JetStream meta leader that sees all three. Server warnings and errors go
// to logw.
//
// maxConsumers is the servers' default_max_consumers (consumers per stream
// when neither the stream nor the account sets a limit): 0 keeps the
// server's default (1,000 in nats-server 2.15), -1 lifts it.
func startCluster(dir string, logw io.Writer, maxConsumers int) (*cluster, error) {
	var ports []int
	for range 3 {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports = append(ports, p)
	}
	c := &cluster{}
	for i := range 3 {
		var routes []string
		for j, p := range ports {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
			}
		}
		o := &server.Options{
			ServerName: fmt.Sprintf("s%d", i),
			Host:       "127.0.0.1",
			Port:       -1,
			NoLog:      true,
			NoSigs:     true,
			JetStream:  true,
			StoreDir:   filepath.Join(dir, fmt.Sprintf("s%d", i)),
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		}
		o.JetStreamLimits.DefaultMaxConsumers = maxConsumers
		// A name of its own: another cluster on this machine that got
		// one of the probed ports refuses the route instead of merging.
		o.Cluster.Name = fmt.Sprintf("parti-scale-%d", os.Getpid())
		o.Cluster.Host = "127.0.0.1"
		o.Cluster.Port = ports[i]
		s, err := server.NewServer(o)
		if err != nil {
			c.shutdown()
			return nil, fmt.Errorf("cluster: server %d: %w", i, err)
		}
		s.SetLoggerV2(embedded.Logger(logw), false, false, false)
		go s.Start()
		c.servers = append(c.servers, s)
	}
	for _, s := range c.servers {
		if !s.ReadyForConnections(30 * time.Second) {
			c.shutdown()
			return nil, fmt.Errorf("cluster: server %s not ready after 30s", s.Name())
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range c.servers {
			if s.JetStreamIsLeader() && len(s.JetStreamClusterPeers()) >= 3 {
				return c, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.shutdown()
	return nil, fmt.Errorf("cluster: no JetStream meta leader seeing three servers after 60s")
}

// urls returns the three client URLs, comma-separated.
func (c *cluster) urls() string {
	var u []string
	for _, s := range c.servers {
		u = append(u, s.ClientURL())
	}
	return strings.Join(u, ",")
}

// inMsgs returns messages and bytes received, summed over the servers
// (from clients and from routes).
func (c *cluster) inMsgs() (msgs, bytes int64) {
	for _, s := range c.servers {
		v, err := s.Varz(nil)
		if err != nil {
			continue
		}
		msgs += v.InMsgs
		bytes += v.InBytes
	}
	return msgs, bytes
}

// clientMsgs returns, summed over the servers' open connections named name,
// the messages the servers received from those clients (their publishes,
// requests and acks) and sent to them (deliveries and replies).
func (c *cluster) clientMsgs(name string) (in, out int64) {
	for _, s := range c.servers {
		z, err := s.Connz(&server.ConnzOptions{Limit: 1 << 20})
		if err != nil {
			continue
		}
		for _, ci := range z.Conns {
			if ci.Name == name {
				in += ci.InMsgs
				out += ci.OutMsgs
			}
		}
	}
	return in, out
}

// streamLeader returns the name of the server whose raft node leads stream
// (in the global account) now, "" while none does: asked of the servers in
// this process, so it answers at once even during an election.
func (c *cluster) streamLeader(stream string) string {
	for _, s := range c.servers {
		if s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return s.Name()
		}
	}
	return ""
}

func (c *cluster) shutdown() {
	for _, s := range c.servers {
		s.Shutdown()
	}
	for _, s := range c.servers {
		s.WaitForShutdown()
	}
}

// provisionAttempt bounds one attempt at a group's stream: a create sent
// while the fresh cluster settles can go unanswered, and would otherwise
// wait out the whole step (it once took a smoke run past its test's
// deadline).
const provisionAttempt = 10 * time.Second

// provision creates group's R3 stream, retrying what passes on its own
// (for a minute at most, within ctx).
func (d *driver) provision(ctx context.Context, group string) error {
	return jsretry.DoEach(ctx, slog.New(slog.DiscardHandler), time.Minute, provisionAttempt, nil, func(actx context.Context) error {
		_, err := projection.Provision(actx, d.js, projection.StreamConfig{Group: group, Replicas: 3})
		return err
	})
}
