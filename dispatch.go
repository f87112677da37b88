package parti

import "sync"

// call is one handler call: Revoked(a, why) when revoke, else Assigned(a).
type call struct {
	a      Assignment
	revoke bool
	why    RevokeReason
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
	returned []string // partitions whose Revoked returned, not collected yet
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

// takeReturned returns the partitions whose Revoked call returned since the
// last call, in the order they returned.
func (d *dispatcher) takeReturned() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.returned
	d.returned = nil
	return r
}

// pending returns the number of calls queued and not started.
func (d *dispatcher) pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.q)
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
			if !c.revoke {
				if d.h != nil {
					d.h.Assigned(c.a)
				}
				continue
			}
			if d.h != nil {
				d.h.Revoked(c.a, c.why)
			}
			d.mu.Lock()
			d.returned = append(d.returned, c.a.Partition)
			d.mu.Unlock()
			wakeUp(d.retWake)
		}
	}
}
