package parti

import (
	"context"
	"sync/atomic"
	"time"
)

// assignmentContext is an Assignment's Context: it ends when the assignment
// is revoked or when the lease context it was handed out under ends.
//
// It is lazy. Until something asks for its Done channel or a Value, it is
// three words inside the member's record of the assignment and registers
// nowhere; only then does it become a cancellable child of the lease
// context. A member holding 100,000 partitions whose handler never waits on
// the contexts (it keys its work by partition and checks Owns, or Err) does
// not pay for 100,000 cancellable contexts and the lease context's map of
// them (about 14 MB); a handler that does wait pays the same as before.
// Err needs no channel: it reads the revocation and the lease context.
type assignmentContext struct {
	lease context.Context
	// live is nil until the context is looked at or revoked; then the
	// cancellable child of lease, or revokedMark when it was revoked
	// before anything looked at it.
	live atomic.Pointer[liveContext]
}

type liveContext struct {
	ctx  context.Context
	stop context.CancelFunc
}

// revokedMark is assignmentContext.live of an assignment revoked before
// anything looked at its context.
var revokedMark = &liveContext{}

// child returns the cancellable child of the lease context, making it on
// first use (cancelled at once if the assignment was revoked meanwhile).
func (c *assignmentContext) child() context.Context {
	for {
		p := c.live.Load()
		if p != nil && p != revokedMark {
			return p.ctx
		}
		ctx, stop := context.WithCancel(c.lease)
		if p == revokedMark {
			stop()
		}
		if c.live.CompareAndSwap(p, &liveContext{ctx: ctx, stop: stop}) {
			return ctx
		}
		stop() // a revocation or another look came first: start over
	}
}

// cancel ends the context: the assignment was revoked.
func (c *assignmentContext) cancel() {
	for {
		p := c.live.Load()
		switch {
		case p == revokedMark:
			return
		case p != nil:
			p.stop()
			return
		case c.live.CompareAndSwap(nil, revokedMark):
			return
		}
	}
}

// Deadline is the lease context's: revocation has none.
func (c *assignmentContext) Deadline() (time.Time, bool) { return c.lease.Deadline() }

// Done returns a channel closed when the assignment is revoked or its lease
// ends.
func (c *assignmentContext) Done() <-chan struct{} { return c.child().Done() }

// Err returns context.Canceled once the assignment was revoked, the lease
// context's error once that ended, else nil.
func (c *assignmentContext) Err() error {
	switch p := c.live.Load(); {
	case p == revokedMark:
		return context.Canceled
	case p != nil:
		return p.ctx.Err()
	}
	return c.lease.Err()
}

// Value returns the value for key. It makes the cancellable child first, so
// that context.Cause and contexts derived from this one find it.
func (c *assignmentContext) Value(key any) any { return c.child().Value(key) }

func (c *assignmentContext) String() string { return "parti.Assignment.Context" }

// liveContexts returns how many assignments m holds and how many of their
// contexts were made. Tests read it through internal/testhooks.
func (m *Member) liveContexts() (held, live int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	//parti:unordered counts
	for _, o := range m.owned {
		held++
		if p := o.ctx.live.Load(); p != nil && p != revokedMark {
			live++
		}
	}
	return held, live
}
