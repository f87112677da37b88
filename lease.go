package parti

import (
	"context"
	"sync"
	"time"
)

// leaseGuard holds the context of the member's current lease: every
// Assignment's context derives from it, so it ends at the lease deadline by
// itself, whatever the member's loop is doing, by a timer armed against the
// lease clock. Go timers do not count a suspend (the boot clock does), so
// the timer never sleeps longer than `every` before it reads the clock again,
// and the loop also checks the clock at every step (and on waking): after a
// suspend the context ends at the first of these checks, within `every` of
// waking even while the loop is held, while Owns, which reads the clock, is
// exact throughout.
type leaseGuard struct {
	clock  Clock
	parent context.Context
	every  time.Duration // the longest the timer sleeps between two readings

	mu       sync.Mutex
	deadline time.Duration
	ctx      context.Context // nil: no live lease context
	cancel   context.CancelFunc
	timer    *time.Timer
	lapsed   bool // a lease context ended since takeLapsed last ran
}

// newLeaseGuard returns a guard whose timer reads clock at least every
// every while a lease context is live (only at the deadline if every ≤ 0).
func newLeaseGuard(parent context.Context, clock Clock, every time.Duration) *leaseGuard {
	return &leaseGuard{parent: parent, clock: clock, every: every}
}

// set records the member's lease deadline (a reading of the clock; 0: no
// live lease) and ends the lease context if it has passed; the loop calls
// it at every step and uses what it returns. A nonzero deadline never
// lowers one an acknowledged heartbeat already extended to (extend): the
// state machine's lease only grows until it is revoked (0), and the loop
// may not have applied that ack yet.
func (g *leaseGuard) set(deadline time.Duration) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if deadline == 0 {
		g.deadline = 0
	} else {
		g.deadline = max(g.deadline, deadline)
	}
	g.checkLocked()
	return g.deadline
}

// extend raises the deadline to at least d (an acknowledged heartbeat's
// renewal, applied as the ack arrives rather than when the loop next
// steps), but only while a lease is live: a deadline of 0 (never
// acknowledged, or revoked by the member) stays until the loop sets one.
// It reports whether it raised the deadline.
func (g *leaseGuard) extend(d time.Duration) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.deadline == 0 || d <= g.deadline || g.clock.Now() >= g.deadline {
		return false
	}
	g.deadline = d
	if g.ctx != nil {
		g.armLocked()
	}
	return true
}

// context returns the context of the current lease for a new assignment:
// one already ended if the deadline has passed, and then the lapse is
// reported (takeLapsed), so the assignment is revoked and made again on a
// live lease rather than kept with a dead context.
func (g *leaseGuard) context() context.Context {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.checkLocked()
	if g.clock.Now() >= g.deadline {
		ctx, cancel := context.WithCancel(g.parent)
		cancel()
		g.lapsed = true
		return ctx
	}
	if g.ctx == nil {
		g.ctx, g.cancel = context.WithCancel(g.parent)
		g.armLocked()
	}
	return g.ctx
}

// takeLapsed reports whether a lease context ended (the lease lapsed) since
// the last call: the assignments derived from it are then over, even if the
// lease was renewed meanwhile, and the member revokes and assigns again.
func (g *leaseGuard) takeLapsed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	l := g.lapsed
	g.lapsed = false
	return l
}

// stop ends the lease context and its timer.
func (g *leaseGuard) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.timer != nil {
		g.timer.Stop()
	}
	if g.ctx != nil {
		g.cancel()
		g.ctx = nil
	}
}

// checkLocked ends the lease context once the clock passed the deadline,
// and otherwise (re-)arms the timer for what is left, at most every.
func (g *leaseGuard) checkLocked() {
	if g.ctx == nil {
		return
	}
	if g.clock.Now() >= g.deadline {
		g.cancel()
		g.ctx = nil
		g.lapsed = true
		if g.timer != nil {
			g.timer.Stop()
		}
		return
	}
	g.armLocked()
}

func (g *leaseGuard) armLocked() {
	// Not only at the deadline: a suspend does not count for the timer,
	// so after one the deadline may have passed long before it fires.
	left := g.deadline - g.clock.Now()
	if g.every > 0 {
		left = min(left, g.every)
	}
	if g.timer == nil {
		g.timer = time.AfterFunc(left, g.fire)
		return
	}
	g.timer.Reset(left)
}

// fire is the timer: it ends the lease context if the deadline has passed,
// and otherwise re-arms it.
func (g *leaseGuard) fire() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.checkLocked()
}
