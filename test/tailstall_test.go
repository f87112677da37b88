package test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/faultproxy"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/projection"
)

// pauseLogConsumers pauses, on the server, every consumer of group's stream
// that reads the log subject (the projections' tails) for an hour: a paused
// consumer delivers nothing while its pull requests and heartbeats stay
// healthy, so the client's ordered consumer does not notice. It returns how
// many it paused.
func pauseLogConsumers(t *testing.T, ctx context.Context, js jetstream.JetStream, group string) int {
	t.Helper()
	subj, _ := events.NewSubjects(group)
	st, err := js.Stream(ctx, projection.StreamName(group))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	lister := st.ListConsumers(ctx)
	for info := range lister.Info() {
		c := info.Config
		if c.FilterSubject != subj.Log() && !slices.Contains(c.FilterSubjects, subj.Log()) {
			continue
		}
		if _, err := st.PauseConsumer(ctx, info.Name, time.Now().Add(time.Hour)); err != nil {
			t.Fatalf("pause %s: %v", info.Name, err)
		}
		n++
	}
	if err := lister.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// stallMetrics counts the tail stalls a member reports.
type stallMetrics struct {
	parti.NopMetrics
	stalls atomic.Int32
}

func (s *stallMetrics) TailStalled() { s.stalls.Add(1) }

// TestStalledTailIsRebuiltAndStopsHeartbeats is issue 11 item 5. A member's
// log tail stops delivering on a healthy connection (its consumer paused on
// the server). The member must notice it by comparing its fold with the
// log's last sequence and rebuild the tail; and while its fold stays behind
// the log for longer than the expiry (every tail it builds stalls too), it
// must stop heartbeating, so its lease lapses, until the fold catches up.
// Before the fix the member learned of new log records only from deliveries
// and its own appends: it never applied the records behind the stalled tail
// and heartbeated on its frozen fold for ever.
func TestStalledTailIsRebuiltAndStopsHeartbeats(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := natstest.Server(t)
	_, direct := natstest.Connect(t, s.ClientURL())
	proxy, err := faultproxy.Start(strings.TrimPrefix(s.ClientURL(), "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	_, viaProxy := natstest.Connect(t, proxy.URL())

	const group = "tailstall"
	logs := &logRecorder{}
	f := newFleet(t, direct, group, 8)
	f.base.ExpectedMembers = 1
	f.base.Logger = slog.New(logs)
	metrics := &stallMetrics{}
	f.base.Metrics = metrics
	f.jsFor = func(string) jetstream.JetStream { return viaProxy }
	m := f.join(ctx, "w1")
	f.waitSettled(20 * time.Second)
	inc := m.Incarnation()
	subj, _ := events.NewSubjects(group)
	junk := func() uint64 {
		t.Helper()
		ack, err := direct.Publish(ctx, subj.Log(), []byte("not an event"))
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}

	// 1. The tail stalls once: the member rebuilds it and applies what the
	// stalled one withheld.
	if n := pauseLogConsumers(t, ctx, direct, group); n == 0 {
		t.Fatal("no log consumer to pause: the test tests nothing")
	}
	seq1 := junk()
	stalledAt := time.Now()
	waitFor(t, 15*time.Second, "the fold to apply the record behind the stalled tail", func() bool {
		return m.LastApplied() >= seq1
	})
	t.Logf("a stalled tail healed %v after the record behind it was appended (heartbeat %v)",
		time.Since(stalledAt).Round(time.Millisecond), f.base.Timings.Heartbeat)
	if !logs.has(slog.LevelWarn, "parti: projection: the tail applied nothing") {
		t.Error("the stall was not logged")
	}
	if metrics.stalls.Load() == 0 {
		t.Error("the stall was not counted (Metrics.TailStalled)")
	}
	if len(m.Assigned()) != len(f.parts) {
		t.Fatalf("after a stall healed in time the member holds %d partitions, want %d", len(m.Assigned()), len(f.parts))
	}

	// 1b. No tail can be built at all (every consumer creation and pull
	// request lost, as while a cluster elects the meta leader a lost server
	// held) but the stream still answers: the member folds what it learns
	// by message gets, so its fold never stays behind for the expiry, and
	// its lease holds while records keep coming for longer than that.
	var noTails atomic.Bool
	noTails.Store(true)
	create := "$JS.API.CONSUMER.CREATE." + projection.StreamName(group)
	next := "$JS.API.CONSUMER.MSG.NEXT." + projection.StreamName(group) + "."
	proxy.SetDropPublish(func(subject string) bool {
		return noTails.Load() && (strings.HasPrefix(subject, create) || strings.HasPrefix(subject, next))
	})
	pauseLogConsumers(t, ctx, direct, group)
	until := time.Now().Add(f.base.Timings.Expiry + time.Second)
	for time.Now().Before(until) {
		seq := junk()
		waitFor(t, f.base.Timings.Expiry, "the fold to apply a record while no tail delivers", func() bool {
			return m.LastApplied() >= seq
		})
		if got := len(m.Assigned()); got != len(f.parts) {
			t.Fatalf("while no tail could be built the member held %d partitions, want %d: its fold fell behind", got, len(f.parts))
		}
	}
	if !logs.has(slog.LevelInfo, "parti: projection: folded records read one by one") {
		t.Error("the records were not folded by the direct catch-up")
	}
	noTails.Store(false)

	// 2. Every tail stalls (the current one paused, the pull requests of
	// new ones lost, and the direct catch-up's message gets by next
	// subject lost too, while reads of a subject's last message pass): the
	// fold stays behind; after the expiry the member stops heartbeating and
	// its lease lapses.
	var dropping atomic.Bool
	dropping.Store(true)
	pull := "$JS.API.CONSUMER.MSG.NEXT." + projection.StreamName(group) + "."
	get := "$JS.API.STREAM.MSG.GET." + projection.StreamName(group)
	proxy.SetDropMessage(func(subject string, payload []byte) bool {
		return dropping.Load() && (strings.HasPrefix(subject, pull) ||
			subject == get && strings.Contains(string(payload), "next_by_subj"))
	})
	pauseLogConsumers(t, ctx, direct, group)
	seq2 := junk()
	behindAt := time.Now()
	waitFor(t, 20*time.Second, "the lease to lapse while the fold is behind", func() bool {
		return len(m.Assigned()) == 0
	})
	t.Logf("the lease lapsed %v after the fold fell behind for good (expiry %v, lease %v)",
		time.Since(behindAt).Round(time.Millisecond), f.base.Timings.Expiry, f.base.Timings.Lease)
	if m.LastApplied() >= seq2 {
		t.Fatalf("the fold applied %d behind tails that all stall: the test tests nothing", seq2)
	}
	if err := m.Ready(); err == nil {
		t.Error("Ready() = nil while the fold is behind the log by more than the expiry")
	}
	if !logs.has(slog.LevelWarn, "the fold is behind the log for longer than the expiry") {
		t.Error("the paused heartbeats were not logged")
	}

	// 3. The tails heal: the fold catches up, heartbeats resume, and the
	// same incarnation holds every partition again.
	dropping.Store(false)
	healAt := time.Now()
	waitFor(t, 20*time.Second, "the fold to catch up and the member to hold its partitions again", func() bool {
		return m.LastApplied() >= seq2 && len(m.Assigned()) == len(f.parts) && m.Ready() == nil
	})
	t.Logf("the fold caught up and the lease came back %v after the tails healed", time.Since(healAt).Round(time.Millisecond))
	if got := m.Incarnation(); got != inc {
		t.Errorf("incarnation %d after the stall, want %d (nobody should have expired it)", got, inc)
	}
}
