package test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
	"github.com/parti-io/parti/internal/clock"
	"github.com/parti-io/parti/internal/faultproxy"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/internal/testhooks"
	"github.com/parti-io/parti/liveness"
)

// blockingHandler hands its first Assigned call's Assignment to the test on
// first and, if block, blocks in that call until release is closed. Other
// calls return at once.
type blockingHandler struct {
	block    bool
	first    chan parti.Assignment // capacity 1
	release  chan struct{}
	once     sync.Once
	assigned atomic.Int64
	revoked  atomic.Int64
}

func newBlockingHandler(block bool) *blockingHandler {
	return &blockingHandler{block: block, first: make(chan parti.Assignment, 1), release: make(chan struct{})}
}

func (h *blockingHandler) Assigned(a parti.Assignment) {
	h.assigned.Add(1)
	h.once.Do(func() {
		h.first <- a
		if h.block {
			<-h.release
		}
	})
}

func (h *blockingHandler) Revoked(parti.Assignment, parti.RevokeReason) { h.revoked.Add(1) }

// blockingMetrics blocks the member's loop in its first Metrics.Phase call
// once armed, until release is closed; blocked is closed when the loop is
// held there.
type blockingMetrics struct {
	parti.NopMetrics
	armed   atomic.Bool
	once    sync.Once
	blocked chan struct{}
	release chan struct{}
}

func (b *blockingMetrics) Phase(string) {
	if !b.armed.Load() {
		return
	}
	b.once.Do(func() {
		close(b.blocked)
		<-b.release
	})
}

// newBlockingMetrics returns disarmed blockingMetrics and the func that
// releases a loop held in them (safe to call more than once).
func newBlockingMetrics() (*blockingMetrics, func()) {
	met := &blockingMetrics{blocked: make(chan struct{}), release: make(chan struct{})}
	var released sync.Once
	return met, func() { released.Do(func() { close(met.release) }) }
}

// leaseCtxRig is one member joined for the tests of the assignment's
// context, with the first Assignment its handler got.
type leaseCtxRig struct {
	clk   parti.Clock
	m     *parti.Member
	h     *blockingHandler
	first parti.Assignment
}

func (r *leaseCtxRig) lease() time.Duration { return testhooks.LeaseDeadline(r.m) }

// joinLeaseCtx joins a member holding n partitions alone and waits for its
// first Assigned call; tweak (if not nil) changes its configuration first.
func joinLeaseCtx(t *testing.T, js jetstream.JetStream, group string, n int, h *blockingHandler, met parti.Metrics, tweak func(*parti.Config)) *leaseCtxRig {
	t.Helper()
	cfg := parti.Config{
		Group: group, ID: "m", Partitions: partitions(n), Timings: testTimings(),
		Window: 100 * time.Millisecond, ExpectedMembers: 1, Grace: 20 * time.Second,
		Handler: h, Clock: clock.Boot(), SnapshotEvery: -1, Metrics: met,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	r := &leaseCtxRig{clk: cfg.Clock, h: h}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := parti.Join(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.m = m
	select {
	case r.first = <-h.first:
	case <-m.Done():
		t.Fatalf("the member stopped before its first assignment: %v", m.Err())
	case <-ctx.Done():
		m.Stop()
		t.Fatal("no assignment within a minute")
	}
	if err := r.first.Context.Err(); err != nil {
		m.Stop()
		t.Fatalf("the first assignment's context had already ended when Assigned was called: %v", err)
	}
	return r
}

// liveWhileRenewed waits until the clock passed the lease deadline the first
// assignment was handed out under while the lease was renewed meanwhile,
// and checks that its context is still live: a context that ends for any
// other reason than a lapsed lease fails here. It reports whether the lease
// was renewed.
func (r *leaseCtxRig) liveWhileRenewed(t *testing.T, handedOut time.Duration) bool {
	t.Helper()
	ctx := r.first.Context
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
		if now := r.clk.Now(); now > handedOut && r.lease() > now {
			if err := ctx.Err(); err != nil {
				t.Fatalf("the assignment's context ended although the lease was renewed: %v", err)
			}
			return true
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the assignment's context ended while the member was connected and heartbeating (lease deadline %v from now): %v",
				r.lease()-r.clk.Now(), context.Cause(ctx))
		case <-time.After(5 * time.Millisecond):
		}
	}
	return false
}

// watchEnd records when the first assignment's context ends, with the
// member's lease deadline then.
func (r *leaseCtxRig) watchEnd() <-chan leaseCtxEnd {
	ended := make(chan leaseCtxEnd, 1)
	context.AfterFunc(r.first.Context, func() { ended <- leaseCtxEnd{r.clk.Now(), r.lease()} })
	return ended
}

type leaseCtxEnd struct{ at, lease time.Duration }

// endsAtDeadline waits for the first assignment's context to end, once the
// lease can no longer be renewed (since: when the member was cut off, or its
// loop held, whichever the test did), and checks it ended at
// the lease deadline: not before it, and at most slack after it (a bound on
// correctness, not a performance threshold).
func (r *leaseCtxRig) endsAtDeadline(t *testing.T, ended <-chan leaseCtxEnd, since time.Duration, slack time.Duration) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case e := <-ended:
			if e.at < e.lease {
				t.Fatalf("the assignment's context ended %v before the lease deadline", e.lease-e.at)
			}
			if err := r.m.Err(); err != nil {
				t.Fatalf("the member stopped: %v", err)
			}
			t.Logf("lease deadline %v after the cut-off, context ended %v after it",
				e.lease-since, e.at-e.lease)
			if e.at > e.lease+slack {
				t.Fatalf("the assignment's context ended %v after the lease deadline, more than %v", e.at-e.lease, slack)
			}
			return
		case <-tick.C:
			// An ack in flight at the cut-off may still renew the lease
			// once: the bound follows the deadline as it is now.
			if now, d := r.clk.Now(), r.lease(); now > d+slack && r.first.Context.Err() == nil {
				t.Fatalf("the assignment's context is still live %v after the lease deadline (cut off %v ago, %d Assigned calls made)",
					now-d, now-since, r.h.assigned.Load())
			}
		}
	}
}

// stopWithin stops the member, failing the test if Stop does not return
// within d (then its goroutine is left behind).
func stopWithin(t *testing.T, m *parti.Member, d time.Duration) bool {
	t.Helper()
	stopped := make(chan struct{})
	go func() { m.Stop(); close(stopped) }()
	select {
	case <-stopped:
		return true
	case <-time.After(d):
		t.Errorf("Stop did not return within %v", d)
		return false
	}
}

// noPartiGoroutines waits until no goroutine runs parti's code (see
// partiGoroutines), failing the test after d.
func noPartiGoroutines(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		left := partiGoroutines()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d goroutines of parti left after the member stopped:\n%s", len(left), strings.Join(left, "\n\n"))
			return
		}
		<-time.After(20 * time.Millisecond)
	}
}

// leaseCtxSlack bounds how late after the lease deadline an assignment's
// context may end.
const leaseCtxSlack = 2 * time.Second

// Issue 11, item 4: an assignment's context ends at the lease deadline by
// itself, whatever the member's loop is doing. The member holds 6,000
// partitions and its handler blocks in its first Assigned call, so the
// other 5,999 calls queue up behind it (on the old main the loop then
// blocked on the full dispatcher queue, heartbeats stopped, and nothing
// cancelled the context any more, issue 11 item 2). While the member is
// connected its lease is renewed and the context the blocked handler holds
// stays live past the deadline it was handed out under; once the member is
// cut off from the server (a blackhole), the context ends at the lease
// deadline, not before it and at most leaseCtxSlack after it.
func TestAssignmentContextEndsAtLeaseDeadlineWhileHandlerBlocks(t *testing.T) {
	s := natstest.Server(t)
	proxy, err := faultproxy.Start(s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var proxyClosed sync.Once
	closeProxy := func() { proxyClosed.Do(proxy.Close) }
	defer closeProxy()
	_, js := natstest.Connect(t, proxy.URL())
	h := newBlockingHandler(true)
	var released sync.Once
	release := func() { released.Do(func() { close(h.release) }) }
	defer release() // before the natstest cleanups, on any failure
	r := joinLeaseCtx(t, js, "leasectx", 6000, h, nil, nil)
	// The leak check at the end must count the member's dispatcher while
	// it runs this test's handler (it once passed with 441 Revoked calls
	// still to be made).
	if !slices.ContainsFunc(partiGoroutines(), func(g string) bool { return strings.Contains(g, "(*blockingHandler).Assigned") }) {
		t.Error("the dispatcher held in the handler is not counted among parti's goroutines")
	}
	defer func() {
		// Everything shuts down: the handler returns, the member stops,
		// no goroutine of parti is left, and every Assigned call was
		// matched by a Revoked call.
		proxy.SetMode(faultproxy.Pass)
		release()
		if !stopWithin(t, r.m, 30*time.Second) {
			return
		}
		closeProxy()
		noPartiGoroutines(t, 30*time.Second)
		if a, v := h.assigned.Load(), h.revoked.Load(); a != v {
			t.Errorf("%d Assigned calls and %d Revoked calls after the member stopped", a, v)
		}
	}()

	if !r.liveWhileRenewed(t, r.lease()) {
		// Reported, and the test goes on to the context's end.
		t.Errorf("the lease was not renewed while the handler blocked (its deadline is %v from now)", r.lease()-r.clk.Now())
	}
	ended := r.watchEnd()
	proxy.SetMode(faultproxy.Blackhole)
	cutAt := r.clk.Now()
	if err := r.first.Context.Err(); err != nil {
		t.Fatalf("the assignment's context ended before the cut: %v", err)
	}
	r.endsAtDeadline(t, ended, cutAt, leaseCtxSlack)
}

// Issue 11, item 4, with the member's loop itself held up: here by a
// Metrics call that blocks, standing in for anything that keeps the loop
// from running (a blocked logger, a long fold, a starved process). The loop
// then sends no heartbeat, so the lease lapses; the context of the
// assignment must end at the lease deadline by itself. Before the fix it
// was cancelled only by the loop, so it stayed live as long as the loop was
// held.
func TestAssignmentContextEndsAtLeaseDeadlineWhileLoopBlocked(t *testing.T) {
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	h := newBlockingHandler(false)
	met, release := newBlockingMetrics()
	defer release()
	r := joinLeaseCtx(t, js, "leasectxloop", 16, h, met, nil)
	defer func() {
		release()
		if stopWithin(t, r.m, 30*time.Second) {
			noPartiGoroutines(t, 30*time.Second)
		}
	}()

	if !r.liveWhileRenewed(t, r.lease()) {
		t.Fatalf("the lease was not renewed (its deadline is %v from now)", r.lease()-r.clk.Now())
	}
	ended := r.watchEnd()
	met.armed.Store(true)
	select {
	case <-met.blocked:
	case <-time.After(10 * time.Second):
		t.Fatal("the member's loop did not call Metrics.Phase within 10 s")
	}
	heldAt := r.clk.Now()
	if err := r.first.Context.Err(); err != nil {
		t.Fatalf("the assignment's context ended before the loop was held: %v", err)
	}
	r.endsAtDeadline(t, ended, heldAt, leaseCtxSlack)
}

// After a suspend (the lease clock jumped; Go timers do not count it) with
// the member's loop held, the assignment's context ends soon after waking,
// not when a timer armed for the rest of the lease would have fired: the
// lease guard checks the clock at least every quarter heartbeat interval.
// The lease is long (20 s) so that the two differ; the context must end
// within leaseCtxSlack of the jump.
func TestAssignmentContextEndsSoonAfterASuspendWhileLoopBlocked(t *testing.T) {
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	tm := liveness.Timings{
		Heartbeat: 500 * time.Millisecond, AckBudget: 500 * time.Millisecond, ReconnectWait: 500 * time.Millisecond,
		Lease: 20 * time.Second, Expiry: 30 * time.Second, Margin: 5 * time.Second,
	}
	clk := &jumpClock{base: clock.Boot()}
	h := newBlockingHandler(false)
	met, release := newBlockingMetrics()
	defer release()
	r := joinLeaseCtx(t, js, "leasectxsuspend", 16, h, met, func(c *parti.Config) { c.Timings, c.Clock = tm, clk })
	defer func() {
		release()
		if stopWithin(t, r.m, 30*time.Second) {
			noPartiGoroutines(t, 30*time.Second)
		}
	}()

	ended := r.watchEnd()
	met.armed.Store(true)
	select {
	case <-met.blocked:
	case <-time.After(10 * time.Second):
		t.Fatal("the member's loop did not call Metrics.Phase within 10 s")
	}
	if err := r.first.Context.Err(); err != nil {
		t.Fatalf("the assignment's context ended before the suspend: %v", err)
	}
	left := r.lease() - clk.Now()
	if left < tm.Lease/2 {
		t.Fatalf("the lease has only %v left: the test cannot tell a timer armed for it from a check on waking", left)
	}
	woke := time.Now()
	clk.off.Add(int64(time.Hour)) // the suspend
	select {
	case e := <-ended:
		if e.at < e.lease {
			t.Fatalf("the assignment's context ended %v before the lease deadline", e.lease-e.at)
		}
		t.Logf("context ended %v after waking", time.Since(woke).Round(time.Millisecond))
	case <-time.After(leaseCtxSlack):
		t.Fatalf("the assignment's context is still live %v after waking from a suspend past its lease deadline (the lease had %v left before it)",
			leaseCtxSlack, left)
	}
	if err := r.m.Err(); err != nil {
		t.Fatalf("the member stopped: %v", err)
	}
}

// An assignment's Context is made only when something looks at it: a
// member holding partitions whose handler never does holds no cancellable
// context for them (one per partition cost about 140 bytes and an entry in
// the lease context's map). Taking one's Done channel makes that one.
func TestAssignmentContextsAreMadeWhenLookedAt(t *testing.T) {
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	h := newBlockingHandler(false)
	r := joinLeaseCtx(t, js, "lazyctx", 200, h, nil, nil)
	defer r.m.Stop()
	waitFor(t, 30*time.Second, "all 200 partitions assigned", func() bool { return len(r.m.Assigned()) == 200 })
	// joinLeaseCtx read the first assignment's Err, which makes nothing.
	if held, live := testhooks.LiveContexts(r.m); held != 200 || live != 0 {
		t.Fatalf("held %d, made %d contexts; want 200 held and none made", held, live)
	}
	as := r.m.Assigned()
	for _, a := range as[:3] {
		select {
		case <-a.Context.Done():
			t.Fatalf("%s: context ended while assigned: %v", a.Partition, a.Context.Err())
		default:
		}
	}
	if held, live := testhooks.LiveContexts(r.m); held != 200 || live != 3 {
		t.Fatalf("held %d, made %d contexts after three Done calls; want 200 and 3", held, live)
	}
}
