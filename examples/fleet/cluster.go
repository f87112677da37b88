package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/parti-io/parti"
)

// clusterSize is the number of nodes of the loopback cluster `server
// --node N` starts one of.
const clusterSize = 3

// clusterURLs returns the client URLs of the loopback cluster's nodes, for
// worker --server.
func clusterURLs(host string, port int) string {
	urls := make([]string, clusterSize)
	for i := range urls {
		urls[i] = fmt.Sprintf("nats://%s:%d", host, port+i)
	}
	return strings.Join(urls, ",")
}

// startClusterNode starts node (1 to 3) of a three-node JetStream cluster
// on host: its clients on port+node-1, its routes on clusterPort+node-1,
// routes to the two others, its store under store/node-N. The cluster
// elects a JetStream leader once two nodes run.
func startClusterNode(host string, port, clusterPort, node int, store string) (*natsserver.Server, error) {
	if node < 1 || node > clusterSize {
		return nil, fmt.Errorf("--node %d: want 1 to %d", node, clusterSize)
	}
	var routes []string
	for i := 1; i <= clusterSize; i++ {
		if i != node {
			routes = append(routes, fmt.Sprintf("nats://%s:%d", host, clusterPort+i-1))
		}
	}
	opts := &natsserver.Options{
		ServerName: fmt.Sprintf("fleet-%d", node),
		Host:       host,
		Port:       port + node - 1,
		NoLog:      true,
		NoSigs:     true,
		JetStream:  true,
		StoreDir:   filepath.Join(store, fmt.Sprintf("node-%d", node)),
		Routes:     natsserver.RoutesFromStr(strings.Join(routes, ",")),
	}
	opts.Cluster.Name = "fleet"
	opts.Cluster.Host = host
	opts.Cluster.Port = clusterPort + node - 1
	s, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster node %d: %w", node, err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("cluster node %d on %s:%d not ready after 15s", node, host, opts.Port)
	}
	return s, nil
}

// rejoinWatch remembers why the member's last incarnation ended, from the
// member's own log records (their "reason" attribute), to announce a
// rejoin on stdout: the member logs it only as a warning.
type rejoinWatch struct {
	slog.Handler
	mu     *sync.Mutex
	reason *string
}

func newRejoinWatch(h slog.Handler) *rejoinWatch {
	return &rejoinWatch{Handler: h, mu: &sync.Mutex{}, reason: new(string)}
}

// Handle implements slog.Handler.
func (w *rejoinWatch) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "reason" {
				w.mu.Lock()
				*w.reason = a.Value.String()
				w.mu.Unlock()
				return false
			}
			return true
		})
	}
	return w.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (w *rejoinWatch) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &rejoinWatch{Handler: w.Handler.WithAttrs(attrs), mu: w.mu, reason: w.reason}
}

// WithGroup implements slog.Handler.
func (w *rejoinWatch) WithGroup(name string) slog.Handler {
	return &rejoinWatch{Handler: w.Handler.WithGroup(name), mu: w.mu, reason: w.reason}
}

// why says in words why an incarnation ended.
func (w *rejoinWatch) why() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch *w.reason {
	case "expired":
		return "expired while frozen or cut off"
	case "removed":
		// The fold shows the incarnation removed: after an expiry (a
		// freeze longer than the expiry ends here when the removal is
		// folded before the verdict is read) or by an operator; the
		// member is not told which.
		return "removed from the group: expired while frozen or cut off, or by an operator"
	case "":
		return "its incarnation ended"
	}
	return *w.reason
}

// announceRejoins prints "rejoined as ID/INC (why)" on out each time m
// comes back as a new incarnation, until ctx ends or m stops.
func announceRejoins(ctx context.Context, m *parti.Member, w *rejoinWatch, out io.Writer) {
	inc := m.Incarnation()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.Done():
			return
		case <-tick.C:
		}
		if now := m.Incarnation(); now != inc {
			inc = now
			fmt.Fprintf(out, "%s  rejoined as %s/%d (%s)\n", time.Now().Format("15:04:05.000"), m.ID(), now, w.why())
		}
	}
}
