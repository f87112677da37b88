package projection_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/projection"
)

// embeddedJetStream starts an in-process nats-server with JetStream on a
// temporary file store and connects to it. Call the returned function to
// shut everything down.
func embeddedJetStream() (jetstream.JetStream, func()) {
	dir, err := os.MkdirTemp("", "parti-example-")
	if err != nil {
		log.Fatal(err)
	}
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		log.Fatal("nats-server not ready")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	return js, func() {
		nc.Close()
		srv.Shutdown()
		srv.WaitForShutdown()
		os.RemoveAll(dir)
	}
}

// Two members claim slots, the projection folds their claims, and the
// derived leader declares the partitions, in two parts published as one
// atomic batch fenced on the log it saw. The same batch fenced on the older
// log is refused.
func Example() {
	js, shutdown := embeddedJetStream()
	defer shutdown()
	ctx := context.Background()

	if _, err := projection.Provision(ctx, js, projection.StreamConfig{Group: "orders"}); err != nil {
		log.Fatal(err)
	}
	subjects, _ := events.NewSubjects("orders")
	app := projection.NewAppender(js, subjects)
	p, err := projection.Start(ctx, js, projection.Config{Group: "orders"})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Stop()

	for _, nonce := range []string{"nonce-a", "nonce-b"} {
		claim, _ := decider.Claim("", nonce, 0)
		if _, err := app.Append(ctx, claim); err != nil {
			log.Fatal(err)
		}
	}
	newest, _ := p.Newest(ctx)
	if err := p.WaitFor(ctx, newest); err != nil {
		log.Fatal(err)
	}

	s := p.State()
	leader, _ := s.Leader()
	parts, _ := decider.Declare(s, leader.ID, leader.Incarnation, []string{"eu", "us", "apac"}, nil, "", 2)
	evs := make([]events.Event, len(parts))
	for i, part := range parts {
		evs[i] = part
	}
	last, err := app.AppendBatch(ctx, evs, s.LastSeq) // two messages, all or nothing
	if err != nil {
		log.Fatal(err)
	}
	_ = p.WaitFor(ctx, last)

	// The same fence again: the log has moved on since s.LastSeq.
	_, err = app.AppendBatch(ctx, evs, s.LastSeq)
	fmt.Println("stale declaration refused:", errors.Is(err, projection.ErrConflict))

	p.View(func(s *decider.State) {
		fmt.Println("leader:", leader.ID)
		fmt.Println("members:", s.Order)
		fmt.Println("partitions:", s.Partitions)
		fmt.Println("folded up to:", s.LastSeq)
	})
	// Output:
	// stale declaration refused: true
	// leader: worker-0
	// members: [worker-0 worker-1]
	// partitions: [eu us apac]
	// folded up to: 4
}

// A member heartbeats fenced on its previous heartbeat; once a judge's
// verdict lands on the subject, the next heartbeat conflicts and the member
// reads what is there.
func ExampleAppender_Heartbeat() {
	js, shutdown := embeddedJetStream()
	defer shutdown()
	ctx := context.Background()

	if _, err := projection.Provision(ctx, js, projection.StreamConfig{Group: "orders"}); err != nil {
		log.Fatal(err)
	}
	subjects, _ := events.NewSubjects("orders")
	app := projection.NewAppender(js, subjects)
	subject := subjects.Heartbeat("worker-0", 1)

	seq, err := app.Heartbeat(ctx, subject, &events.Heartbeat{Nonce: "nonce-a"}, 0, time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	verdict := &events.ExpiryVerdict{Member: "worker-0", Incarnation: 1, Judge: "worker-1", JudgeInc: 1, LastSeen: seq, SpanMillis: 6000}
	if _, err := app.PublishVerdict(ctx, subject, verdict, seq); err != nil {
		log.Fatal(err)
	}

	_, err = app.Heartbeat(ctx, subject, &events.Heartbeat{Nonce: "nonce-a"}, seq, time.Minute)
	fmt.Println("conflict:", errors.Is(err, projection.ErrConflict))
	rec, _, err := app.LastOnSubject(ctx, subject)
	if err != nil {
		log.Fatal(err)
	}
	if v, ok := rec.Event.(*events.ExpiryVerdict); ok {
		fmt.Println("expired by", v.Judge)
	}
	// Output:
	// conflict: true
	// expired by worker-1
}
