// Command upgradeworker is one member of a group, for the protocol upgrade
// tests only: built once as is (protocol version 1) and once with the build
// tag partiv2 (a test-only version 2), it lets a test upgrade a running fleet
// process by process.
//
// It joins the group, prints "joined <id> <incarnation> <max version>" and
// runs until SIGTERM, on which it closes for a restart (keeping its ID and
// partitions for the grace period) and exits 0. If the member stops on its
// own it prints why and exits 3; if Join refuses because the group speaks a
// newer protocol it exits 4; any other failure exits 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/liveness"
)

func main() {
	server := flag.String("server", nats.DefaultURL, "NATS server URL")
	group := flag.String("group", "upgrade", "group ID")
	id := flag.String("id", "", "member ID")
	nparts := flag.Int("partitions", 32, "number of partitions declared")
	flag.Parse()
	os.Exit(run(*server, *group, *id, *nparts))
}

func run(server, group, id string, nparts int) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	nc, err := nats.Connect(server, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		fmt.Fprintln(os.Stderr, "connect:", err)
		return 1
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "jetstream:", err)
		return 1
	}
	parts := make([]string, nparts)
	for i := range parts {
		parts[i] = fmt.Sprintf("p-%04d", i)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// The member's context is not the signal's: a SIGTERM closes it for a
	// restart rather than cancelling it.
	m, err := parti.Join(context.Background(), js, parti.Config{
		Group: group, ID: id, Partitions: parts, Timings: liveness.Test(),
		Window: 300 * time.Millisecond, Grace: 30 * time.Second, Logger: log,
	})
	switch {
	case errors.Is(err, parti.ErrNewerProtocol):
		fmt.Println("refused:", err)
		return 4
	case err != nil:
		fmt.Fprintln(os.Stderr, "join:", err)
		return 1
	}
	fmt.Println("joined", m.ID(), m.Incarnation(), events.MaxVersion)
	select {
	case <-ctx.Done():
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Close(cctx); err != nil {
			fmt.Fprintln(os.Stderr, "close:", err)
			return 1
		}
		fmt.Println("closed")
		return 0
	case <-m.Done():
		fmt.Println("stopped:", m.Err())
		return 3
	}
}
