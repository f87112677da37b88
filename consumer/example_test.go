package consumer_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
	"github.com/parti-io/parti/consumer"
)

// Example consumes the partitions a member owns: every message of stream
// ORDERS on orders.<partition>, in order per partition, following every
// change of ownership. The helper itself is the ten lines after the setup.
func Example() {
	js, stop := exampleServer() // an embedded server with a stream ORDERS on orders.>
	defer stop()
	ctx := context.Background()
	done := make(chan struct{})

	member := parti.Fast("shop")
	member.Partitions, member.ExpectedMembers = []string{"eu", "us"}, 1
	c, err := consumer.Join(ctx, js, member, consumer.Config{
		Stream:  "ORDERS",
		Subject: "orders.{partition}",
		Handler: func(ctx context.Context, m *consumer.Msg) error {
			fmt.Printf("%s #%d: %s\n", m.Partition, m.Seq, m.Data)
			if string(m.Data) == "refund" {
				close(done)
			}
			return nil // processed; an error retries, then dead-letters
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Leave(ctx)

	for _, body := range []string{"order", "payment", "refund"} {
		js.Publish(ctx, "orders.eu", []byte(body))
	}
	<-done
	// Output:
	// eu #1: order
	// eu #2: payment
	// eu #3: refund
}

func exampleServer() (jetstream.JetStream, func()) {
	dir, _ := os.MkdirTemp("", "parti-consumer-example")
	srv, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	go srv.Start()
	srv.ReadyForConnections(10 * time.Second)
	nc, _ := nats.Connect(srv.ClientURL())
	js, _ := jetstream.New(nc)
	js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	return js, func() {
		nc.Close()
		srv.Shutdown()
		os.RemoveAll(dir)
	}
}
