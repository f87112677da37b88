package rawmember

import (
	"time"

	"github.com/parti-io/parti/decider"
)

// Driver is one member process: the incarnations of its ID one after
// another, and the handler contract (Handoff) between them and the
// application. It decides everything a runtime around it would otherwise
// decide on its own: when a leave or close starts revoking, that a close
// is appended only once every Revoked call returned, that a release is
// appended in the same step the application let go, when the process ends
// (the close landed, it left, a newer protocol) and when it rejoins as a
// new incarnation (an expiry or removal while nothing asked it to end).
//
// parti.Member, partitest and the simulator drive it; each carries out its
// Actions (appends, heartbeats, watches) and its Ready (handler calls) in
// its own way and reports the results back, to Output.Member for actions
// and to Returned for Revoked calls.
//
// It is not safe for concurrent use.
type Driver struct {
	// Execute, if set, receives each batch of actions as soon as the
	// member emits it within a step (Output.Actions then stays empty): a
	// heartbeat goes out before the contract compares a large holding and
	// the runtime makes its calls, which can take long enough to delay it
	// past the lease.
	Execute func(m *Member, acts []Action)

	m         *Member
	ho        *Handoff
	leave     bool // Leave was called
	close     bool // Close was called
	closeSent bool // the close was handed to the member (every Revoked call had returned)
}

// NewDriver starts the first incarnation of cfg.ID (its claim is the first
// action).
func NewDriver(cfg Config) *Driver {
	m := New(cfg)
	m.Start()
	return &Driver{m: m, ho: NewHandoff()}
}

// Member returns the current incarnation.
func (d *Driver) Member() *Member { return d.m }

// Output is what a step asks the runtime to do.
type Output struct {
	// Member is the incarnation the actions belong to: their results go to
	// it (Done, HeartbeatAcked, ...), even if a rejoin replaced it since.
	Member *Member
	// Actions are the I/O to carry out, in order.
	Actions []Action
	// Ready holds the handler calls to make, in order.
	Ready Ready
	// Closed reports that the fold shows this process's close: it ends
	// (with StopClosed) without appending anything more.
	Closed bool
}

// Step steps the member at the fold s and reading now and returns what to
// do. A step that lets go of partitions steps the member again, so the
// release is appended now rather than at the next step; once Close was
// called and every Revoked call returned, it appends the close.
func (d *Driver) Step(s *decider.State, now time.Duration) Output {
	m := d.m
	out := Output{Member: m}
	m.StepLive(s, now)
	d.take(&out) // the heartbeat goes out before the leader decides
	m.StepLead(s, now)
	d.take(&out)
	out.Ready = d.ho.Step(m, s, now)
	if out.Ready.LetGo {
		m.Step(s, now)
		d.take(&out)
	}
	if d.close && !d.closeSent && d.ho.Quiet() {
		// Every Revoked call returned: only now may a new process with
		// this ID be granted the partitions.
		d.closeSent = true
		m.Step(s, now)
		m.Close()
		d.take(&out)
	}
	if id, inc, ok := m.Identity(); ok && d.closeSent {
		out.Closed = CloseLanded(s, id, inc)
	}
	return out
}

// take hands the member's pending actions to Execute, or adds them to out.
func (d *Driver) take(out *Output) {
	acts := out.Member.Actions()
	if d.Execute != nil {
		if len(acts) > 0 {
			d.Execute(out.Member, acts)
		}
		return
	}
	out.Actions = append(out.Actions, acts...)
}

// Leave starts a graceful leave: every partition is revoked (the calls
// returned), and each is released once its Revoked call returned.
func (d *Driver) Leave() Ready {
	d.leave = true
	d.m.Leave()
	return d.ho.Stop(ReasonStopped)
}

// Close starts a close for a restart: every partition is revoked (the calls
// returned); the close is appended by the step after the last Revoked call
// returned.
func (d *Driver) Close() Ready {
	d.close = true
	return d.ho.Stop(ReasonStopped)
}

// Ending reports whether Leave or Close was called.
func (d *Driver) Ending() bool { return d.leave || d.close }

// Closing reports whether Close was called.
func (d *Driver) Closing() bool { return d.close }

// Returned records that the Revoked call c returned; it reports whether a
// partition was let go of (step again: its release is due).
func (d *Driver) Returned(c Call) bool { return d.ho.Returned(d.m, c) }

// LeaseLapsed revokes everything the application holds with
// ReasonLeaseLost: the lease ran out, perhaps just before a renewal, and
// what was handed out on it is over. A later step assigns again what the
// member may act on.
func (d *Driver) LeaseLapsed() Ready { return d.ho.RevokeAll(ReasonLeaseLost) }

// Stop revokes everything with ReasonStopped and assigns nothing more: the
// process ends.
func (d *Driver) Stop() Ready { return d.ho.Stop(ReasonStopped) }

// Quiet reports whether the application holds nothing and every Revoked
// call returned.
func (d *Driver) Quiet() bool { return d.ho.Quiet() }

// Held returns what the application holds, sorted by index.
func (d *Driver) Held() []Owned { return d.ho.Held() }

// Stopped returns why the current incarnation stopped (NotStopped if it
// runs) and whether the process should rejoin as a new incarnation
// (Rejoin): after an expiry or a removal, unless Leave or Close was called.
func (d *Driver) Stopped() (r StopReason, rejoin bool) {
	r = d.m.Stopped()
	return r, Rejoin(r, d.Ending())
}

// Rejoin revokes what the old incarnation handed out (ReasonStopped) and
// starts a new incarnation of the same ID with a new process nonce, keeping
// what the old one was told since it started (the partition set and
// placement it declares). The old incarnation's pending results still go
// to it and change nothing.
func (d *Driver) Rejoin(nonce string) Ready {
	rd := d.ho.RevokeAll(ReasonStopped)
	cfg := d.m.cfg
	cfg.Nonce = nonce
	d.m = New(cfg)
	d.m.Start()
	return rd
}
