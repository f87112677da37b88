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
