// Package natstest starts embedded nats-server instances with JetStream for
// tests: a single server, or a three-server cluster on loopback. Stores live
// in the test's temporary directory; servers stop when the test ends.
package natstest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options returns the options of a JetStream server storing under dir.
func Options(dir string) *server.Options {
	return &server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		NoLog:     true,
		NoSigs:    true,
		JetStream: true,
		StoreDir:  dir,
	}
}

// Start starts a server with opts and waits until it accepts connections.
func Start(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("natstest: new server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatalf("natstest: server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// Server starts a single JetStream server with its store in a temp dir.
func Server(t testing.TB) *server.Server {
	t.Helper()
	return Start(t, Options(t.TempDir()))
}

// Connect connects to url and returns the connection and its JetStream
// context; both close when the test ends.
func Connect(t testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("natstest: connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	return nc, js
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("natstest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// clusterSeq numbers the clusters this process starts.
var clusterSeq atomic.Int64

// Cluster is a three-server JetStream cluster on loopback.
type Cluster struct {
	t       testing.TB
	Opts    []*server.Options
	Servers []*server.Server
}

// NewCluster starts a three-server cluster and waits until it has a
// JetStream meta leader.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	base := t.TempDir()
	ports := []int{FreePort(t), FreePort(t), FreePort(t)}
	c := &Cluster{t: t}
	// A name of its own: test packages run concurrently, each starting
	// clusters on ports it probed free. A route that reaches another
	// cluster's server (a probed port taken meanwhile) is refused for its
	// name instead of merging two clusters into one whose JetStream meta
	// group never settles (a stream create then waits forever).
	name := fmt.Sprintf("parti-test-%d-%d", os.Getpid(), clusterSeq.Add(1))
	for i := range 3 {
		o := Options(filepath.Join(base, fmt.Sprintf("s%d", i)))
		o.ServerName = fmt.Sprintf("%s-s%d", name, i)
		o.Cluster.Name = name
		o.Cluster.Host = "127.0.0.1"
		o.Cluster.Port = ports[i]
		var routes []string
		for j, p := range ports {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
			}
		}
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		c.Opts = append(c.Opts, o)
	}
	for _, o := range c.Opts {
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatalf("natstest: cluster server: %v", err)
		}
		go s.Start()
		c.Servers = append(c.Servers, s)
	}
	t.Cleanup(c.Shutdown)
	for i, s := range c.Servers {
		if !s.ReadyForConnections(15 * time.Second) {
			t.Fatalf("natstest: cluster server %s not ready", s.Name())
		}
		// Restart keeps the client port: one URL list (AllURLs) reaches
		// every server across restarts, and proxies forward to it.
		c.Opts[i].Port = s.Addr().(*net.TCPAddr).Port
	}
	c.WaitMetaLeader(30 * time.Second)
	return c
}

// AllURLs returns the client URLs of every server, running or stopped,
// comma-separated: a client given it reconnects to a restarted server.
func (c *Cluster) AllURLs() string {
	urls := make([]string, len(c.Opts))
	for i, o := range c.Opts {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", o.Port)
	}
	return strings.Join(urls, ",")
}

// WaitMetaLeader waits until some running server is the JetStream meta
// leader and sees every running server online with JetStream (before that,
// creating a replicated stream fails with "no suitable peers").
func (c *Cluster) WaitMetaLeader(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		running := 0
		for _, s := range c.Servers {
			if s != nil && s.Running() {
				running++
			}
		}
		for _, s := range c.Servers {
			if s != nil && s.Running() && s.JetStreamIsLeader() && len(s.JetStreamClusterPeers()) >= running {
				return
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	c.t.Fatalf("natstest: no JetStream meta leader seeing every server after %v", timeout)
}

// URLs returns the client URLs of the running servers, comma-separated.
func (c *Cluster) URLs() string {
	var urls []string
	for _, s := range c.Servers {
		if s != nil && s.Running() {
			urls = append(urls, s.ClientURL())
		}
	}
	return strings.Join(urls, ",")
}

// Stop shuts server i down.
func (c *Cluster) Stop(i int) {
	c.Servers[i].Shutdown()
	c.Servers[i].WaitForShutdown()
}

// Restart starts server i again on its store and ports.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	o := c.Opts[i].Clone()
	s, err := server.NewServer(o)
	if err != nil {
		c.t.Fatalf("natstest: restart: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		c.t.Fatalf("natstest: restarted server not ready")
	}
	c.Servers[i] = s
}

// Shutdown stops every server.
func (c *Cluster) Shutdown() {
	for _, s := range c.Servers {
		if s != nil {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}
}
