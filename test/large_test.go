package test

import (
	"context"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/clock"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/internal/testhooks"
)

// Issue 11, item 2: a member holding many partitions. Before the fix, a step
// revoking more than about 5,000 partitions wedged the loop and the handler
// dispatcher against each other, and a slow handler stalled heartbeats. Each
// test runs with 6,000 partitions in `make test` and with
// PARTI_LARGE_PARTITIONS (100,000 in `make test-large`).

// largeN returns the number of partitions of the large-holding tests.
func largeN(t *testing.T) int {
	t.Helper()
	if v := os.Getenv("PARTI_LARGE_PARTITIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("PARTI_LARGE_PARTITIONS=%q: want a positive number", v)
		}
		return n
	}
	return 6000
}

// largeWait bounds each wait of the large tests: generous, they are about
// finishing at all.
func largeWait(n int) time.Duration { return 2*time.Minute + time.Duration(n)*3*time.Millisecond }

// jumpClock is the boot clock plus an offset the test moves forward (as a
// suspend would).
type jumpClock struct {
	base clock.Clock
	off  atomic.Int64
}

func (c *jumpClock) Now() time.Duration { return c.base.Now() + time.Duration(c.off.Load()) }

// countHandler counts the handler calls and may sleep in each.
type countHandler struct {
	sleep    time.Duration
	assigned atomic.Int64
	mu       sync.Mutex
	revoked  map[parti.RevokeReason]int
}

func (h *countHandler) Assigned(parti.Assignment) {
	if h.sleep > 0 {
		time.Sleep(h.sleep) // the application's slow work, not synchronisation
	}
	h.assigned.Add(1)
}

func (h *countHandler) Revoked(_ parti.Assignment, why parti.RevokeReason) {
	if h.sleep > 0 {
		time.Sleep(h.sleep)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.revoked == nil {
		h.revoked = map[parti.RevokeReason]int{}
	}
	h.revoked[why]++
}

// held returns the number of partitions the handler holds: assigned and
// not revoked since.
func (h *countHandler) held() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := int(h.assigned.Load())
	for _, c := range h.revoked {
		n -= c
	}
	return n
}

func (h *countHandler) revokedFor(why parti.RevokeReason) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.revoked[why]
}

// joinLarge starts one member holding n partitions and waits until it acts
// on all of them.
func joinLarge(t *testing.T, js jetstream.JetStream, group string, n int, h parti.Handler, clk parti.Clock) *parti.Member {
	t.Helper()
	cfg := parti.Config{
		Group: group, ID: "big", Partitions: partitions(n), Timings: testTimings(),
		Window: 100 * time.Millisecond, ExpectedMembers: 1, Grace: 20 * time.Second,
		Handler: h, Clock: clk, SnapshotEvery: -1,
	}
	ctx, cancel := context.WithTimeout(context.Background(), largeWait(n))
	defer cancel()
	began := time.Now()
	m, err := parti.Join(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	if err := m.WaitStable(ctx); err != nil {
		t.Fatalf("waiting for %d partitions: %v", n, err)
	}
	if got := len(m.Assigned()); got != n {
		t.Fatalf("the member acts on %d partitions, want %d", got, n)
	}
	t.Logf("%d partitions: joined and stable in %v", n, time.Since(began).Round(time.Millisecond))
	return m
}

// A cold start of one member over the large holding, fast profile (lease
// 700 ms): the step that takes every partition at once (the decision, the
// contract's calls, one context each) used to outlast the lease, and the
// member revoked everything for a lost lease one to three times while
// nothing was wrong (100,000 partitions). Its heartbeat now goes out before
// that work and its ack renews the lease as it arrives.
func TestLargeHoldingColdStartKeepsItsLease(t *testing.T) {
	n := largeN(t)
	_, js := natstest.Connect(t, natstest.Server(t).ClientURL())
	h := &countHandler{}
	cfg := parti.Fast("largecold")
	cfg.ID, cfg.Partitions, cfg.ExpectedMembers, cfg.Handler, cfg.SnapshotEvery = "big", partitions(n), 1, h, -1
	ctx, cancel := context.WithTimeout(context.Background(), largeWait(n))
	defer cancel()
	began := time.Now()
	m, err := parti.Join(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	waitFor(t, largeWait(n), "every partition acted on", func() bool { return h.held() == n })
	took := time.Since(began)
	if err := m.WaitStable(ctx); err != nil {
		t.Fatal(err)
	}
	if got := h.revokedFor(parti.RevokeLeaseLost); got != 0 {
		t.Fatalf("%d partitions revoked for a lost lease during a cold start with no fault", got)
	}
	t.Logf("FIGURE cold start, fast profile: %d partitions acted on in %v, no lease lost", n, took.Round(time.Millisecond))
}

func TestLargeHoldingLeave(t *testing.T) {
	n := largeN(t)
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	h := &countHandler{}
	m := joinLarge(t, js, "largeleave", n, h, nil)
	waitFor(t, largeWait(n), "the handler to hold every partition", func() bool { return h.held() == n })
	ctx, cancel := context.WithTimeout(context.Background(), largeWait(n))
	defer cancel()
	began := time.Now()
	if err := m.Leave(ctx); err != nil {
		t.Fatalf("leave with %d partitions: %v", n, err)
	}
	t.Logf("FIGURE leave: %d partitions: Leave returned in %v", n, time.Since(began).Round(time.Millisecond))
	if got, stopped := h.held(), h.revokedFor(parti.RevokeStopped); got != 0 || stopped < n {
		t.Fatalf("the handler holds %d partitions after %d Revoked(stopped) calls, want 0 after at least %d", got, stopped, n)
	}
	if sum := summarize(groupLog(t, js, "largeleave"), "big"); sum.left != 1 || sum.removed != 0 {
		t.Fatalf("log: %+v, want one leave and no removal", sum)
	}
}

func TestLargeHoldingClose(t *testing.T) {
	n := largeN(t)
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	h := &countHandler{}
	m := joinLarge(t, js, "largeclose", n, h, nil)
	waitFor(t, largeWait(n), "the handler to hold every partition", func() bool { return h.held() == n })
	ctx, cancel := context.WithTimeout(context.Background(), largeWait(n))
	defer cancel()
	began := time.Now()
	if err := m.Close(ctx); err != nil {
		t.Fatalf("close with %d partitions: %v", n, err)
	}
	t.Logf("FIGURE close: %d partitions: Close returned in %v", n, time.Since(began).Round(time.Millisecond))
	if got, stopped := h.held(), h.revokedFor(parti.RevokeStopped); got != 0 || stopped < n {
		t.Fatalf("the handler holds %d partitions after %d Revoked(stopped) calls, want 0 after at least %d", got, stopped, n)
	}
	if sum := summarize(groupLog(t, js, "largeclose"), "big"); sum.closing != 1 || sum.removed != 0 {
		t.Fatalf("log: %+v, want one close and no removal", sum)
	}
}

// The member's clock jumps past its lease (as after a suspend): every
// partition is revoked with RevokeLeaseLost at once, then given back when
// the next heartbeat is acknowledged.
func TestLargeHoldingLeaseLoss(t *testing.T) {
	n := largeN(t)
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	h := &countHandler{}
	clk := &jumpClock{base: clock.Boot()}
	m := joinLarge(t, js, "largelease", n, h, clk)
	waitFor(t, largeWait(n), "the handler to hold every partition", func() bool { return h.held() == n })
	lost := h.revokedFor(parti.RevokeLeaseLost)
	began := time.Now()
	clk.off.Add(int64(2 * testTimings().Lease))
	waitFor(t, largeWait(n), "every partition revoked for a lost lease and assigned again", func() bool {
		return h.revokedFor(parti.RevokeLeaseLost) >= lost+n && h.held() == n
	})
	t.Logf("FIGURE lease loss: %d partitions: revoked and assigned again in %v", n, time.Since(began).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), largeWait(n))
	defer cancel()
	if err := m.WaitStable(ctx); err != nil {
		t.Fatal(err)
	}
	if sum := summarize(groupLog(t, js, "largelease"), "big"); sum.removed != 0 {
		t.Fatalf("log: %+v, want no removal", sum)
	}
}

// The member's incarnation is removed (an operator's force-expire, which
// the member handles as it does a judge's verdict): it revokes everything
// and rejoins as a new incarnation that gets every partition back.
func TestLargeHoldingRejoinAfterRemoval(t *testing.T) {
	n := largeN(t)
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	h := &countHandler{}
	m := joinLarge(t, js, "largerejoin", n, h, nil)
	waitFor(t, largeWait(n), "the handler to hold every partition", func() bool { return h.held() == n })
	inc := m.Incarnation()
	ctx, cancel := context.WithTimeout(context.Background(), largeWait(n))
	defer cancel()
	began := time.Now()
	if err := m.Operate(ctx, events.OperatorAction{Action: events.OpForceExpire, Member: "big", By: "test"}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("incarnation %d (was %d), acting on %d, %d Assigned calls, Revoked: stopped %d, lease-lost %d",
				m.Incarnation(), inc, len(m.Assigned()), h.assigned.Load(), h.revokedFor(parti.RevokeStopped), h.revokedFor(parti.RevokeLeaseLost))
		}
	}()
	waitFor(t, largeWait(n), "a new incarnation acting on every partition", func() bool {
		select {
		case <-m.Done():
			t.Fatalf("the member stopped: %v", m.Err())
		default:
		}
		return m.Incarnation() != inc && len(m.Assigned()) == n && h.revokedFor(parti.RevokeStopped) >= n && h.held() == n
	})
	t.Logf("FIGURE rejoin: %d partitions: removed, rejoined and acting on all again in %v", n, time.Since(began).Round(time.Millisecond))
	// The new incarnation closes like any other.
	if err := m.Close(ctx); err != nil {
		t.Fatalf("close after the rejoin: %v", err)
	}
}

// A handler that sleeps in every call (sleep per call) over n partitions
// keeps the dispatcher busy for many expiries; heartbeats go on meanwhile:
// the slow member loses no lease (no RevokeLeaseLost) and the other member,
// its judge, never expires it.
func TestSlowHandlerCostsNoLease(t *testing.T) {
	n := largeN(t)
	sleep := time.Millisecond
	if v := os.Getenv("PARTI_SLOW_HANDLER_SLEEP"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("PARTI_SLOW_HANDLER_SLEEP=%q: %v", v, err)
		}
		sleep = d
	}
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	tm := testTimings()
	if busy := time.Duration(n) * sleep; busy < 2*tm.Expiry {
		t.Fatalf("%d calls of %v keep the handler busy for %v, less than two expiries", n, sleep, busy)
	}
	h := &countHandler{sleep: sleep}
	cfg := parti.Config{
		Group: "slowhandler", ID: "slow", Partitions: partitions(n), Timings: tm,
		Window: 100 * time.Millisecond, ExpectedMembers: 1, Grace: 20 * time.Second,
		Handler: h, SnapshotEvery: -1,
	}
	ctx, cancel := context.WithTimeout(context.Background(), largeWait(n)+time.Duration(2*n)*sleep)
	defer cancel()
	slow, err := parti.Join(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Stop()
	began := time.Now()
	// The slow member is given every partition (its n Assigned calls are
	// queued), then the judge joins and takes half: their releases wait for
	// the slow Revoked calls queued behind the Assigned ones.
	waitFor(t, largeWait(n), "the slow member to own every partition", func() bool { return len(slow.Assigned()) == n })
	jcfg := cfg
	jcfg.ID, jcfg.Handler, jcfg.ExpectedMembers = "judge", nil, 2
	judge, err := parti.Join(ctx, js, jcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer judge.Stop()
	boot := clock.Boot()
	at := boot.Now()
	waitFor(t, largeWait(n), "a heartbeat of the slow member acked two expiries after the handler got busy", func() bool {
		return testhooks.LeaseDeadline(slow) > at+2*tm.Expiry
	})
	if h.held() == len(slow.Assigned()) {
		t.Fatalf("the handler caught up before the check: make it slower")
	}
	busy := largeWait(n) + time.Duration(2*n)*sleep
	waitFor(t, busy, "the handler to catch up and the group to settle", func() bool {
		return judge.GroupSettled(2) && len(slow.Assigned()) > 0 && len(judge.Assigned()) > 0 && h.held() == len(slow.Assigned())
	})
	if got := h.revokedFor(parti.RevokeLeaseLost); got != 0 {
		t.Fatalf("%d partitions revoked for a lost lease while the handler was slow", got)
	}
	if got := h.revokedFor(parti.RevokeMoved); got == 0 {
		t.Fatal("no partition moved to the judge")
	}
	if sum := summarize(groupLog(t, js, "slowhandler"), "slow"); sum.removed != 0 || sum.verdicts != 0 {
		t.Fatalf("log: %+v: the slow member was expired", sum)
	}
	t.Logf("FIGURE slow handler: %d Assigned and %d Revoked calls of %v each over %v", h.assigned.Load(), h.revokedFor(parti.RevokeMoved), sleep, time.Since(began).Round(time.Millisecond))
	t.Logf("%d partitions, %v per call: no lease lost, no expiry", n, sleep)
}
