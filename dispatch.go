package parti

import (
	"sync"

	"github.com/parti-io/parti/rawmember"
)

// call is one handler call of the contract (c), with the Assignment the
// application sees: Revoked(a, c.Why) when c.Revoke, else Assigned(a).
type call struct {
	a Assignment
	c rawmember.Call
}

// dispatcher makes the handler calls, serially, on its own goroutine. The
// member's loop hands it calls without ever waiting: the queue is unbounded,
// so however slow the handler, heartbeats, judging and the fold go on. When
// a Revoked call returns, the partition is reported back (returned, with a
// wake-up on returnedC) so that the loop may release it.
type dispatcher struct {
	h    Handler
	wake chan struct{} // capacity 1: work was queued or the dispatcher closed

	mu       sync.Mutex
	q        []call
	closed   bool
	returned []rawmember.Call // Revoked calls that returned, not collected yet
	retWake  chan struct{}
	done     chan struct{}
}

func newDispatcher(h Handler) *dispatcher {
	return &dispatcher{h: h, wake: make(chan struct{}, 1), retWake: make(chan struct{}, 1), done: make(chan struct{})}
}

func wakeUp(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// push queues calls; it never blocks.
func (d *dispatcher) push(cs ...call) {
	if len(cs) == 0 {
		return
	}
	d.mu.Lock()
	d.q = append(d.q, cs...)
	d.mu.Unlock()
	wakeUp(d.wake)
}

// close lets the dispatcher end once every queued call was made.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	wakeUp(d.wake)
}

// returnedC is signalled when Revoked calls returned; collect them with
// takeReturned.
func (d *dispatcher) returnedC() <-chan struct{} { return d.retWake }

// takeReturned returns the Revoked calls that returned since the last
// call, in the order they returned.
func (d *dispatcher) takeReturned() []rawmember.Call {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.returned
	d.returned = nil
	return r
}

func (d *dispatcher) run() {
	defer close(d.done)
	for {
		d.mu.Lock()
		batch, closed := d.q, d.closed
		d.q = nil
		d.mu.Unlock()
		if len(batch) == 0 {
			if closed {
				return
			}
			<-d.wake
			continue
		}
		for _, c := range batch {
			if !c.c.Revoke {
				if d.h != nil {
					d.h.Assigned(c.a)
				}
				continue
			}
			if d.h != nil {
				d.h.Revoked(c.a, RevokeReason(c.c.Why))
			}
			d.mu.Lock()
			d.returned = append(d.returned, c.c)
			d.mu.Unlock()
			wakeUp(d.retWake)
		}
	}
}
