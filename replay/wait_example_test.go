package replay_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti/projection"
	"github.com/parti-io/parti/replay"
)

// ExampleConn_WaitSource waits for a group's stream that does not exist
// yet, as parti-replay tail does; every wait on the server is bounded by
// the connection's Timeout.
func ExampleConn_WaitSource() {
	dir, _ := os.MkdirTemp("", "replay-example")
	defer os.RemoveAll(dir)
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, JetStream: true, StoreDir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	go srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		fmt.Println("server not ready")
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := replay.Connect(ctx, replay.ConnectOptions{Server: srv.ClientURL(), Timeout: 5 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()

	// Another program creates the stream once we are waiting.
	waiting := make(chan struct{})
	go func() {
		<-waiting
		nc, _ := nats.Connect(srv.ClientURL())
		defer nc.Close()
		js, _ := jetstream.New(nc)
		projection.Provision(ctx, js, projection.StreamConfig{Group: "orders"})
	}()
	src, err := conn.WaitSource(ctx, "orders", 100*time.Millisecond, func() {
		fmt.Println("waiting for", replay.StreamName("orders"))
		close(waiting)
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	last, err := src.LastSeq(ctx)
	fmt.Println("found it; last sequence", last, err)
	// Output:
	// waiting for PARTI_orders
	// found it; last sequence 0 <nil>
}
