package consumer_test

// Measurements behind the package doc, run on demand:
//
//	PARTI_CONSUMER_BENCH=1 go test ./consumer/ -run Bench -v -timeout 30m
//
// PARTI_CONSUMER_BENCH=3 runs them on a three-server cluster with R3
// streams; BENCH_P (partitions, default 256) and BENCH_N (messages, default
// 100,000) size the throughput run.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
	"github.com/parti-io/parti/consumer"
	"github.com/parti-io/parti/internal/jsretry"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/liveness"
)

func benchEnv(t *testing.T) (replicas int, url string) {
	t.Helper()
	switch os.Getenv("PARTI_CONSUMER_BENCH") {
	case "":
		t.Skip("set PARTI_CONSUMER_BENCH=1 (one server) or 3 (three servers, R3)")
	case "3":
		c := natstest.NewCluster(t)
		return 3, c.URLs()
	}
	return 1, natstest.Server(t).ClientURL()
}

func envInt(k string, d int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return d
}

func createStream(t *testing.T, js jetstream.JetStream, cfg jetstream.StreamConfig) {
	t.Helper()
	// A fresh cluster may not have placed peers yet.
	err := jsretry.Do(context.Background(), slog.New(slog.DiscardHandler), 30*time.Second, nil, func() error {
		_, err := js.CreateStream(context.Background(), cfg)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func backlog(t *testing.T, js jetstream.JetStream, parts []string, n int) {
	t.Helper()
	for i := range n {
		if _, err := js.PublishAsync("bench."+parts[i%len(parts)], []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 999 {
			<-js.PublishAsyncComplete()
		}
	}
	<-js.PublishAsyncComplete()
}

// TestBenchThroughput: messages/s through the helper (one member owning
// every partition, a handler that returns at once) against a plain durable
// consumer on the same stream, each draining the same backlog.
func TestBenchThroughput(t *testing.T) {
	replicas, url := benchEnv(t)
	P, N := envInt("BENCH_P", 256), envInt("BENCH_N", 100_000)
	_, js := natstest.Connect(t, url)
	createStream(t, js, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"}, Replicas: replicas})
	parts := make([]string, P)
	for i := range parts {
		parts[i] = fmt.Sprintf("p%04d", i)
	}
	start := time.Now()
	backlog(t, js, parts, N)
	t.Logf("R%d, %d partitions: published %d messages in %v", replicas, P, N, time.Since(start).Round(time.Millisecond))
	ctx := context.Background()

	// Plain: one durable consumer, explicit acks sent without waiting.
	s, err := js.Stream(ctx, "BENCH")
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "plain", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	done := make(chan struct{})
	start = time.Now()
	cc, err := c.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		if n.Add(1) == int64(N) {
			close(done)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	<-done
	plain := float64(N) / time.Since(start).Seconds()
	cc.Stop()
	t.Logf("plain consumer:            %8.0f msg/s", plain)

	for i, async := range []bool{false, true} {
		group := fmt.Sprintf("bench%d", i)
		var got atomic.Int64
		var first atomic.Int64
		done := make(chan struct{})
		cfg := consumer.Config{
			Stream: "BENCH", Subject: "bench.{partition}", ConfirmEach: !async,
			CommitInterval: time.Duration(envInt("BENCH_COMMIT_MS", 0)) * time.Millisecond,
			Handler: func(context.Context, *consumer.Msg) error {
				if first.Load() == 0 {
					first.CompareAndSwap(0, time.Now().UnixNano())
				}
				if got.Add(1) == int64(N) {
					close(done)
				}
				return nil
			},
		}
		mc := parti.Config{Group: group, Partitions: parts, Timings: liveness.Fast(), Window: 100 * time.Millisecond,
			ExpectedMembers: 1, Replicas: replicas}
		joined := time.Now()
		h, err := consumer.Join(ctx, js, mc, cfg)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(5 * time.Minute):
			t.Fatalf("helper processed %d of %d", got.Load(), N)
		}
		end := time.Now()
		rate := float64(N) / end.Sub(time.Unix(0, first.Load())).Seconds()
		t.Logf("helper (%s): %8.0f msg/s = %.2f× plain (first message %v after the join; %.0f msg/s counting the join)",
			map[bool]string{false: "ConfirmEach", true: "default    "}[async], rate, rate/plain,
			time.Unix(0, first.Load()).Sub(joined).Round(time.Millisecond), float64(N)/end.Sub(joined).Seconds())
		t.Logf("stats: %+v", h.Stats())
		if err := h.Leave(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBenchHandoffPause: every partition has a backlog and a handler that
// takes BENCH_HANDLER_MS (default 5 ms); a third member joins, then one leaves. For each partition that
// moved, the pause is the time from the old owner's last handler return to
// the new owner's first handler start. Partitions that stayed report their
// longest gap during the change (their shard's consumer is rebuilt).
func TestBenchHandoffPause(t *testing.T) {
	replicas, url := benchEnv(t)
	P := envInt("BENCH_HANDOFF_P", 128)
	_, js := natstest.Connect(t, url)
	createStream(t, js, jetstream.StreamConfig{Name: "HAND", Subjects: []string{"bench.>"}, Replicas: replicas})
	parts := make([]string, P)
	for i := range parts {
		parts[i] = fmt.Sprintf("p%04d", i)
	}
	work := time.Duration(envInt("BENCH_HANDLER_MS", 5)) * time.Millisecond
	backlog(t, js, parts, P*int(10*time.Second/work)) // ten seconds of work per partition
	type rec struct {
		who        string
		start, end time.Time
	}
	var mu sync.Mutex
	recs := map[string][]rec{}
	handler := func(who string) consumer.Handler {
		return func(_ context.Context, m *consumer.Msg) error {
			start := time.Now()
			time.Sleep(work)
			mu.Lock()
			recs[m.Partition] = append(recs[m.Partition], rec{who, start, time.Now()})
			mu.Unlock()
			return nil
		}
	}
	ctx := context.Background()
	mc := parti.Config{Group: "hand", Partitions: parts, Timings: liveness.Fast(), Window: 100 * time.Millisecond, Replicas: replicas}
	var evmu sync.Mutex
	revokedAt := map[string]time.Time{}
	assignedAt := map[string]time.Time{}
	join := func(id string, expected int) *consumer.Consumer {
		c := mc
		c.ID, c.ExpectedMembers = id, expected
		c.Handler = parti.HandlerFuncs{
			OnAssigned: func(a parti.Assignment) { evmu.Lock(); assignedAt[a.Partition] = time.Now(); evmu.Unlock() },
			OnRevoked: func(a parti.Assignment, _ parti.RevokeReason) {
				evmu.Lock()
				revokedAt[a.Partition] = time.Now()
				evmu.Unlock()
			},
		}
		h, err := consumer.Join(ctx, js, c, consumer.Config{Stream: "HAND", Subject: "bench.{partition}", Handler: handler(id), Logger: benchLogger(id)})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	consuming := func(hs ...*consumer.Consumer) func() bool {
		return func() bool {
			n := 0
			for _, h := range hs {
				if h.Stats().Partitions == 0 {
					return false
				}
				n += h.Stats().Partitions
			}
			return n == P
		}
	}
	a, b := join("a", 2), join("b", 2)
	waitUntil(t, time.Minute, "two members consuming", consuming(a, b))
	waitUntil(t, time.Minute, "every partition handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(recs) == P
	})

	measure := func(what string, change func()) {
		mu.Lock()
		from := map[string]int{}
		for p, r := range recs {
			from[p] = len(r)
		}
		mu.Unlock()
		t0 := time.Now()
		change()
		t1 := time.Now()
		// Every partition has been handled again since the change ended.
		waitUntil(t, time.Minute, "every partition to move on", func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range parts {
				r := recs[p]
				if len(r) == 0 || !r[len(r)-1].start.After(t1) {
					return false
				}
			}
			return true
		})
		mu.Lock()
		defer mu.Unlock()
		var moved, stayed, oldSide, member, newSide []time.Duration
		for _, p := range parts {
			all := recs[p]
			var maxGap time.Duration
			movedHere := false
			for i := max(from[p], 1); i < len(all); i++ {
				gap := all[i].start.Sub(all[i-1].end)
				if all[i].who != all[i-1].who {
					moved = append(moved, gap)
					movedHere = true
					evmu.Lock()
					if rv, as := revokedAt[p], assignedAt[p]; rv.After(all[i-1].end) && as.After(rv) && all[i].start.After(as) {
						oldSide = append(oldSide, rv.Sub(all[i-1].end))
						member = append(member, as.Sub(rv))
						newSide = append(newSide, all[i].start.Sub(as))
					}
					evmu.Unlock()
				} else if all[i].start.After(t0) {
					maxGap = max(maxGap, gap)
				}
			}
			if !movedHere {
				stayed = append(stayed, maxGap)
			}
		}
		q := func(d []time.Duration, f float64) time.Duration {
			if len(d) == 0 {
				return 0
			}
			slices.Sort(d)
			return d[min(len(d)-1, int(f*float64(len(d))))].Round(100 * time.Microsecond)
		}
		t.Logf("R%d %s: %d partitions moved, pause p50 %v p99 %v max %v (handler %v); %d stayed, longest gap p50 %v p99 %v max %v",
			replicas, what, len(moved), q(moved, .5), q(moved, .99), q(moved, 1), work, len(stayed), q(stayed, .5), q(stayed, .99), q(stayed, 1))
		t.Logf("R%d %s: pause p50 = old owner drains %v + member hands over %v + new owner starts %v",
			replicas, what, q(oldSide, .5), q(member, .5), q(newSide, .5))
	}
	var c *consumer.Consumer
	measure("scale-up 2→3", func() {
		c = join("c", 0)
		waitUntil(t, time.Minute, "three members consuming", consuming(a, b, c))
	})
	measure("leave 3→2", func() {
		if err := b.Leave(ctx); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, time.Minute, "two members consuming", consuming(a, c))
	})
	_ = a.Leave(ctx)
	_ = c.Leave(ctx)
}

func benchLogger(id string) *slog.Logger {
	if os.Getenv("BENCH_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("m", id)
}
