// Command fleet runs a real fleet of processes: one embedded JetStream
// server and any number of workers in their own terminals.
//
//	go run ./examples/fleet server --port 4222 --store ./.fleet
//	go run ./examples/fleet worker --id worker-1 --server nats://127.0.0.1:4222
//	go run ./examples/fleet worker --id worker-2
//	go run ./cmd/parti-replay tail --server nats://127.0.0.1:4222 --group fleet
//
// On a three-node cluster on loopback (clients on 4222-4224), with the
// group's stream at three replicas:
//
//	go run ./examples/fleet server --node 1      # and --node 2, --node 3
//	go run ./examples/fleet worker --id worker-1 --replicas 3 \
//	    --server nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224
//
// kill -9 one worker and watch its partitions move after the expiry; stop
// one with Ctrl-C and it closes for a restart: start it again with the same
// --id within the grace and nothing moves.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
	"github.com/parti-io/parti/internal/embedded"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopSignals = stop
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return // --help: the usage was printed
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

// stopSignals stops delivering signals to the signal context: the default
// action (exit) applies again.
var stopSignals = func() {}

const usage = `usage:
  fleet server [--host 127.0.0.1] [--port 4222] [--store ./.fleet] [--node 1|2|3 [--cluster-port 6222]]
  fleet worker [--id ID] [--server URL[,URL...]] [--replicas 1|3] [--group fleet] [--partitions 64] [--leave] [--http ADDR]`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return flag.ErrHelp
	case "server":
		return server(ctx, args[1:], stdout, stderr)
	case "worker":
		return worker(ctx, args[1:], stdout, stderr)
	}
	return errors.New(usage)
}

func server(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host := fs.String("host", "127.0.0.1", "listen address")
	port := fs.Int("port", 4222, "client port")
	store := fs.String("store", ".fleet", "JetStream store directory (kept across restarts)")
	node := fs.Int("node", 0, "start node `N` (1-3) of a three-node cluster on --host: clients on --port+N-1, routes on --cluster-port+N-1")
	clusterPort := fs.Int("cluster-port", 6222, "the cluster's first route port (with --node)")
	if err := fs.Parse(args); err != nil {
		return err // flag.ErrHelp for --help
	}
	if *node != 0 {
		s, err := startClusterNode(*host, *port, *clusterPort, *node, *store)
		if err != nil {
			return err
		}
		defer s.Shutdown()
		fmt.Fprintf(stdout, "cluster node %d of %d: JetStream server %s at %s, store %s; Ctrl-C stops it\nworkers: --server %s --replicas 3\n",
			*node, clusterSize, s.Name(), s.ClientURL(), filepath.Join(*store, fmt.Sprintf("node-%d", *node)), clusterURLs(*host, *port))
		<-ctx.Done()
		return nil
	}
	s, err := embedded.Start(*host, *port, *store)
	if err != nil {
		return err
	}
	defer s.Shutdown()
	fmt.Fprintf(stdout, "JetStream server at %s, store %s; Ctrl-C stops it\n", s.ClientURL(), *store)
	<-ctx.Done()
	return nil
}

// connectWait is how long a worker waits for its first connection.
const connectWait = 30 * time.Second

func worker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	id := fs.String("id", "", "member ID (empty: the lowest free worker-N slot)")
	url := fs.String("server", nats.DefaultURL, "NATS `URL`s, comma-separated (a cluster: one per node)")
	replicas := fs.Int("replicas", 1, "the group stream's replicas when this worker creates it (3 on a three-node cluster)")
	group := fs.String("group", "fleet", "group")
	n := fs.Int("partitions", 64, "partitions")
	leave := fs.Bool("leave", false, "on Ctrl-C leave (hand off now) instead of closing for a restart")
	httpAddr := fs.String("http", "", "serve /metrics, /livez and /readyz on this address (host:port; empty: none)")
	if err := fs.Parse(args); err != nil {
		return err // flag.ErrHelp for --help
	}
	// A worker started together with its servers (a compose file, a
	// supervisor starting everything at once) waits for one to answer,
	// up to connectWait, instead of failing at once.
	connected := make(chan struct{})
	var once sync.Once
	nc, err := nats.Connect(*url, nats.MaxReconnects(-1), nats.ReconnectWait(500*time.Millisecond),
		nats.RetryOnFailedConnect(true), nats.ConnectHandler(func(*nats.Conn) { once.Do(func() { close(connected) }) }))
	if err != nil {
		return err
	}
	defer nc.Close()
	if !nc.IsConnected() {
		fmt.Fprintf(stdout, "waiting up to %v for a NATS server at %s\n", connectWait, *url)
	}
	select {
	case <-connected:
	case <-ctx.Done():
		return nil // stopped before it ever connected
	case <-time.After(connectWait):
		return fmt.Errorf("no NATS server answered at %s within %v", *url, connectWait)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	rejoins := newRejoinWatch(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	log := slog.New(rejoins)
	cfg := parti.Production(*group)
	cfg.ID = *id
	cfg.Replicas = *replicas
	for i := range *n {
		cfg.Partitions = append(cfg.Partitions, fmt.Sprintf("tenant-%03d", i))
	}
	cfg.Logger = log
	obs, err := newObserver()
	if err != nil {
		return err
	}
	defer obs.close()
	label := *id
	if label == "" {
		label = fmt.Sprintf("pid-%d", os.Getpid()) // the slot is known only once joined
	}
	cfg.Metrics = obs.prom.Member(*group, label)
	cfg.Handler = parti.HandlerFuncs{
		OnAssigned: func(a parti.Assignment) {
			fmt.Fprintf(stdout, "%s  + %s (token %s)\n", time.Now().Format("15:04:05.000"), a.Partition, a.Token)
		},
		OnRevoked: func(a parti.Assignment, why parti.RevokeReason) {
			fmt.Fprintf(stdout, "%s  - %s (%s)\n", time.Now().Format("15:04:05.000"), a.Partition, why)
		},
	}
	// ctx (the signal context) bounds joining only: the member runs until
	// Close or Leave below.
	m, err := parti.Join(ctx, js, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "joined group %q as %s (incarnation %d)\n", *group, m.ID(), m.Incarnation())
	if err := obs.serve(*httpAddr, m, stdout, stderr); err != nil {
		m.Stop()
		return err
	}
	go announceRejoins(ctx, m, rejoins, stdout)
	select {
	case <-ctx.Done():
	case <-m.Done():
		return m.Err()
	}
	// The signal context has ended: give Close or Leave a fresh one, so that
	// it can tell the group. A second Ctrl-C now kills the process.
	stopSignals()
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if *leave {
		fmt.Fprintln(stdout, "leaving: handing partitions off")
		if err := m.Leave(stopCtx); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "left")
		return nil
	}
	fmt.Fprintln(stdout, "closing for a restart: start again with the same --id within 30s and nothing moves")
	if err := m.Close(stopCtx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "closed")
	return nil
}
