package parti_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
)

// Example joins a group of one member on an embedded JetStream server and
// waits until it owns every partition.
func Example() {
	dir, _ := os.MkdirTemp("", "parti-example")
	defer os.RemoveAll(dir)
	srv, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	go srv.Start()
	defer srv.Shutdown()
	srv.ReadyForConnections(10 * time.Second)
	nc, _ := nats.Connect(srv.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := parti.Fast("orders")
	cfg.Partitions = []string{"eu-1", "eu-2", "us-1", "us-2"}
	cfg.ExpectedMembers = 1
	cfg.Handler = parti.HandlerFuncs{
		OnAssigned: func(a parti.Assignment) {
			// Start work on a.Partition; stop when a.Context ends. Pass
			// a.Token to storage that rejects stale writers.
		},
	}
	m, err := parti.Join(ctx, js, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Leave(ctx)
	if err := m.WaitStable(ctx); err != nil {
		fmt.Println(err)
		return
	}
	for _, a := range m.Assigned() {
		fmt.Println(a.Partition)
	}
	// Output:
	// eu-1
	// eu-2
	// us-1
	// us-2
}
