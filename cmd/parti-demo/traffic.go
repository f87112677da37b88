package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// traffic is the demo's producer and the ledger of what the workers
// processed: sequence-numbered orders per tenant, so loss, duplicates and
// order can be checked at the end.
type traffic struct {
	js     jetstream.JetStream
	parts  []string
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	published map[string]int // tenant -> last sequence published
	seen      map[string]int // tenant -> last sequence processed
	dups      int
	reorders  int
	total     int
}

func startTraffic(ctx context.Context, js jetstream.JetStream, parts []string) (*traffic, error) {
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
		return nil, fmt.Errorf("create stream ORDERS: %w", err)
	}
	pctx, cancel := context.WithCancel(ctx)
	t := &traffic{js: js, parts: parts, cancel: cancel, done: make(chan struct{}),
		published: map[string]int{}, seen: map[string]int{}}
	go t.produce(pctx)
	return t, nil
}

// produce publishes about 1,000 orders a second across the tenants.
func (t *traffic) produce(ctx context.Context) {
	defer close(t.done)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	i := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for range 10 {
			p := t.parts[i%len(t.parts)]
			i++
			t.mu.Lock()
			seq := t.published[p] + 1
			t.mu.Unlock()
			if _, err := t.js.Publish(ctx, "orders."+p, []byte(strconv.Itoa(seq))); err != nil {
				continue
			}
			t.mu.Lock()
			t.published[p] = seq
			t.mu.Unlock()
		}
	}
}

func (t *traffic) processed(_ string, partition string, data []byte) {
	seq, _ := strconv.Atoi(string(data))
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total++
	switch last := t.seen[partition]; {
	case seq <= last:
		t.dups++
	case seq != last+1:
		t.reorders++
		t.seen[partition] = seq
	default:
		t.seen[partition] = seq
	}
}

func (t *traffic) stop() {
	t.cancel()
	<-t.done
}

// report stops the producer, waits until every published order was
// processed (or 20 s) and prints the ledger.
func (t *traffic) report(ctx context.Context, w io.Writer) error {
	t.stop()
	// A publish cut short by the stop may have been stored without its
	// ack: the stream's own count is the truth.
	if st, err := t.js.Stream(ctx, "ORDERS"); err == nil {
		if info, err := st.Info(ctx, jetstream.WithSubjectFilter("orders.>")); err == nil {
			t.mu.Lock()
			for subj, n := range info.State.Subjects {
				p := subj[len("orders."):]
				t.published[p] = max(t.published[p], int(n))
			}
			t.mu.Unlock()
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	lost := 0
	for {
		t.mu.Lock()
		lost = 0
		published := 0
		for p, n := range t.published {
			published += n
			if t.seen[p] < n {
				lost += n - t.seen[p]
			}
		}
		total, dups, reorders := t.total, t.dups, t.reorders
		t.mu.Unlock()
		if lost == 0 || time.Now().After(deadline) {
			fmt.Fprintf(w, "orders: %d published, %d processed, %d not processed, %d duplicates (handled again after the crash), %d out of order\n\n",
				published, total, lost, dups, reorders)
			if reorders > 0 || lost > 0 {
				return fmt.Errorf("orders were lost or reordered")
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
