package parti

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parti-io/parti/internal/clock"
)

type offsetClock struct {
	base clock.Clock
	off  atomic.Int64
}

func (c *offsetClock) Now() time.Duration { return c.base.Now() + time.Duration(c.off.Load()) }

// Issue 11, item 4: the lease context ends at the deadline by itself (no
// step needed), never before it.
func TestLeaseContextEndsAtTheDeadlineByItself(t *testing.T) {
	clk := clock.Boot()
	g := newLeaseGuard(context.Background(), clk, time.Minute)
	defer g.stop()
	deadline := clk.Now() + 30*time.Millisecond
	g.set(deadline)
	ctx := g.context()
	select {
	case <-ctx.Done():
		if now := clk.Now(); now < deadline {
			t.Fatalf("the lease context ended %v before the deadline", deadline-now)
		}
	case <-time.After(time.Minute):
		t.Fatal("the lease context did not end by itself")
	}
	if a := g.context(); a.Err() == nil {
		t.Fatal("a new assignment past the deadline got a live context")
	}
	// Renewed after the lapse: the lapse is still reported once, so the
	// assignments of the ended context are revoked and assigned again.
	g.set(clk.Now() + time.Hour)
	if !g.takeLapsed() || g.takeLapsed() {
		t.Fatal("the lapse is not reported exactly once")
	}
}

// After a suspend (the clock jumped, the timer did not count it) the lease
// context ends at the next check; a renewed deadline keeps it alive.
func TestLeaseContextAfterASuspendEndsAtTheFirstCheck(t *testing.T) {
	clk := &offsetClock{base: clock.Boot()}
	g := newLeaseGuard(context.Background(), clk, time.Minute)
	defer g.stop()
	deadline := clk.Now() + time.Hour
	g.set(deadline)
	ctx := g.context()
	g.set(deadline + time.Hour) // renewed
	if ctx.Err() != nil {
		t.Fatal("a renewed lease ended its context")
	}
	clk.off.Add(int64(3 * time.Hour)) // a suspend: the timer is still armed for an hour
	g.set(deadline + time.Hour)       // the loop's check on waking
	if ctx.Err() == nil {
		t.Fatal("the lease context outlived the deadline after a suspend")
	}
	g.set(clk.Now() + time.Hour) // a heartbeat landed again
	if next := g.context(); next.Err() != nil || next == ctx {
		t.Fatal("no fresh lease context after the lease was renewed")
	}
}

// An acknowledged heartbeat's renewal applies as the ack arrives (extend),
// while the loop is still busy: the loop's next set, from a state machine
// that has not applied the ack yet, does not take it back; only a revoked
// lease (0) does. A lease that is not live is never extended.
func TestLeaseRenewalAppliesBeforeTheLoopSeesIt(t *testing.T) {
	clk := &offsetClock{base: clock.Boot()}
	g := newLeaseGuard(context.Background(), clk, time.Minute)
	defer g.stop()
	if g.extend(clk.Now() + time.Hour) {
		t.Fatal("a lease never acknowledged was extended")
	}
	start := clk.Now()
	g.set(start + time.Minute)
	ctx := g.context()
	if !g.extend(start + 2*time.Minute) {
		t.Fatal("a live lease was not extended by a later renewal")
	}
	if g.extend(start + 90*time.Second) {
		t.Fatal("an earlier renewal shortened or re-extended the lease")
	}
	if got := g.set(start + time.Minute); got != start+2*time.Minute {
		t.Fatalf("the loop's stale deadline took the renewal back: %v, want %v", got-start, 2*time.Minute)
	}
	clk.off.Add(int64(90 * time.Second)) // past the stale deadline, within the renewal
	g.set(start + time.Minute)
	if ctx.Err() != nil || g.takeLapsed() {
		t.Fatal("the lease lapsed at the deadline the renewal had replaced")
	}
	if got := g.set(0); got != 0 || ctx.Err() == nil {
		t.Fatal("a revoked lease (0) did not end the lease context")
	}
	if g.extend(clk.Now() + time.Hour) {
		t.Fatal("a revoked lease was extended by a late ack")
	}
}

// After a suspend with no step following (the member's loop is held), the
// timer still notices: it checks the clock at least every interval, not
// only at the deadline it computed before the suspend.
func TestLeaseContextAfterASuspendEndsWithoutAStep(t *testing.T) {
	clk := &offsetClock{base: clock.Boot()}
	g := newLeaseGuard(context.Background(), clk, 10*time.Millisecond)
	defer g.stop()
	g.set(clk.Now() + time.Hour)
	ctx := g.context()
	clk.off.Add(int64(2 * time.Hour)) // a suspend; no set follows
	select {
	case <-ctx.Done():
	case <-time.After(time.Minute):
		t.Fatal("the lease context outlived a suspend past its deadline while nothing called set")
	}
	if !g.takeLapsed() {
		t.Fatal("the lapse the timer saw is not reported")
	}
}

// An assignment handed out after the deadline passed (the step began with a
// valid lease and took long) gets an ended context, and the lapse is
// reported, so the member revokes it and assigns it again once the lease is
// renewed instead of leaving it with a dead context.
func TestLeaseContextHandedOutLateReportsTheLapse(t *testing.T) {
	clk := &offsetClock{base: clock.Boot()}
	g := newLeaseGuard(context.Background(), clk, time.Minute)
	defer g.stop()
	g.set(clk.Now() + time.Second)
	clk.off.Add(int64(2 * time.Second))
	if ctx := g.context(); ctx.Err() == nil {
		t.Fatal("an assignment past the deadline got a live context")
	}
	g.set(clk.Now() + time.Minute) // renewed at the next step
	if !g.takeLapsed() {
		t.Fatal("the dead context handed out is not reported as a lapse")
	}
}
