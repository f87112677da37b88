package sim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/rawmember"
)

// --- scripts -----------------------------------------------------------------

// ErrScript reports a scripted action that cannot run (an unknown process, a
// partition outside the script's set) or a wait that did not end within its
// bound.
var ErrScript = errors.New("sim: script")

// DefaultScriptLimit bounds each wait of a Script in simulated time.
const DefaultScriptLimit = 30 * time.Second

// Script drives one world from a test, one action at a time, with no fault
// of any kind: no crash, pause, isolation, stall, loss, clock step, fold
// stall, adversary or placement, and no process starts or ends but those
// the script asks for (and, should one be expired all the same, its rejoin).
// What stays is what is not a fault: network delays, tail lags, clock
// offsets and rates, the application's time to finish a revoked partition,
// and every check of a random run that does not wait for a quiet period
// (overlaps of beliefs and of applications, invariants, divergence,
// refolds, fenced appends applying, the store, grants, restarts inside the
// grace); Settle is the script's liveness check, with its own bound. A seed
// replays a script exactly.
//
// Each process may have a parti.Handler: its application then calls it for
// each handler call it makes, as parti.Member's dispatcher does (Assigned
// when it starts acting, Revoked when the revocation returns), so the
// handler contract table (internal/contracttest) runs on the simulator. One
// difference from parti.Member remains, outside every scripted case: the
// simulator models the rejoin after an expiry as a new process (its
// Handler is the ID's), so the Handler gets the new incarnation's Assigned
// calls but not the Revoked(stopped) calls of rawmember.Driver.Rejoin.
//
// Methods return an error (wrapping ErrScript, or the first Violation) with
// the world's state and its last events when a check failed or a wait did
// not end within Limit.
type Script struct {
	w *world
	// Limit bounds each wait in simulated time (DefaultScriptLimit).
	Limit time.Duration
}

// NewScript returns a script over the partitions (the set every process
// declares and the universe SetPartitions draws from), with opt's seed,
// steps, timings and timeouts, and every fault rate, the adversary and
// placement mode turned off. opt.Trace defaults to 200 events for failure
// reports.
func NewScript(opt Options, partitions []string) (*Script, error) {
	if len(partitions) == 0 {
		return nil, fmt.Errorf("%w: partitions: none given", ErrScript)
	}
	index := make(map[string]int, len(partitions))
	for i, id := range partitions {
		if id == "" {
			return nil, fmt.Errorf("%w: partitions[%d]: empty ID", ErrScript, i)
		}
		if _, dup := index[id]; dup {
			return nil, fmt.Errorf("%w: partitions[%d]: %q given twice", ErrScript, i, id)
		}
		index[id] = i
	}
	opt.CrashRate, opt.PauseRate, opt.IsolateRate, opt.StallRate, opt.CloseRate = 0, 0, 0, 0, 0
	opt.LeaveRate, opt.JoinRate, opt.DeclareRate, opt.SkewRate, opt.FoldStallRate = 0, 0, 0, 0, 0
	opt.LossProb, opt.LeaderCrashProb, opt.ZoneLossRate = 0, 0, 0
	opt.Adversary = Adversary{}
	opt.Placement, opt.LongPauses, opt.LongOutages, opt.ExpectOverlap = false, false, false, false
	if opt.Trace <= 0 {
		opt.Trace = 200
	}
	w := baseWorld(opt)
	w.handlers = map[string]parti.Handler{}
	w.ph = phaseScripted
	ids := slices.Clone(partitions)
	w.setUniverse(ids, index)
	w.partitions = slices.Clone(ids)
	w.tracef("script over %d partitions", len(ids))
	return &Script{w: w, Limit: DefaultScriptLimit}, nil
}

// Now returns the simulated real time.
func (s *Script) Now() time.Duration { return s.w.T }

// Join starts a process claiming id whose application calls h (nil: none),
// and runs the world until its claim is granted, as parti.Join returns once
// the member joined. A rejoin of id after an expiry calls h too.
func (s *Script) Join(id string, h parti.Handler) error {
	w := s.w
	if p := s.running(id); p != nil {
		return fmt.Errorf("%w: Join %s: process %s runs with this ID", ErrScript, id, p.name())
	}
	w.handlers[id] = h
	w.start(id)
	p := w.procs[len(w.procs)-1]
	return s.runUntil("Join "+id+": the claim is granted", func() bool {
		_, _, ok := p.m.Identity()
		return ok
	})
}

// Leave starts a graceful leave of the process running id and runs the world
// until the leave landed and the process ended: its application got every
// partition revoked (each Revoked returned before its release).
func (s *Script) Leave(id string) error {
	p, err := s.granted("Leave", id)
	if err != nil {
		return err
	}
	s.w.beginLeave(p)
	s.w.tracef("script: leave %s", p.name())
	s.w.flush(p)
	return s.end("Leave", p, rawmember.StopLeft.String())
}

// Close starts a close for a restart of the process running id and runs the
// world until the close landed and the process ended: its application got
// every partition revoked, and the close was appended once every Revoked
// call returned.
func (s *Script) Close(id string) error {
	p, err := s.granted("Close", id)
	if err != nil {
		return err
	}
	s.w.beginClose(p)
	s.w.tracef("script: close %s", p.name())
	s.w.flush(p)
	return s.end("Close", p, rawmember.StopClosed.String(), "closed (close acknowledged)")
}

// SetPartitions makes the process running id declare ids (when it leads, as
// parti.Member.SetPartitions does), and makes them the set later processes
// declare; it runs the world until the authoritative fold holds ids. Every
// ID must be among the script's partitions.
func (s *Script) SetPartitions(id string, ids []string) error {
	w := s.w
	p, err := s.granted("SetPartitions", id)
	if err != nil {
		return err
	}
	for i, pid := range ids {
		if _, ok := w.uindex[pid]; !ok {
			return fmt.Errorf("%w: SetPartitions %s: ids[%d]: %q is not among the script's partitions", ErrScript, id, i, pid)
		}
	}
	w.partitions = slices.Clone(ids)
	w.setPartitions(p.m, w.partitions)
	w.tracef("script: set %d partitions on %s", len(ids), p.name())
	return s.runUntil("SetPartitions: the declaration in the fold", func() bool {
		return slices.Equal(w.auth.Partitions, ids)
	})
}

// Settle runs the world until it is settled: the authoritative fold is
// stable (no claim waiting, nothing in flight, nothing for the leader to
// decide), every member it holds is a running process, and every running
// process has caught up with the log, holds a valid lease, has no handler
// call left to make, and its application (and Handler) holds exactly what
// the fold gives its member, with its fencing tokens.
func (s *Script) Settle() error {
	return s.runUntil("Settle", func() bool { return s.unsettled() == "" })
}

// running returns the running process claiming id, or nil.
func (s *Script) running(id string) *proc {
	for _, p := range s.w.procs {
		if !p.dead && p.id == id {
			return p
		}
	}
	return nil
}

// granted returns the running process of id, granted and neither ending nor
// stopped, for the action op.
func (s *Script) granted(op, id string) (*proc, error) {
	p := s.running(id)
	if p == nil {
		return nil, fmt.Errorf("%w: %s %s: no process runs with this ID", ErrScript, op, id)
	}
	if _, _, ok := p.m.Identity(); !ok || p.closing || p.leaving || p.m.Stopped() != rawmember.NotStopped {
		return nil, fmt.Errorf("%w: %s %s: process %s is not a running member (granted %v, closing %v, leaving %v, stopped %v)",
			ErrScript, op, id, p.name(), ok, p.closing, p.leaving, p.m.Stopped())
	}
	return p, nil
}

// end runs the world until p ended, and checks it ended for one of whys.
func (s *Script) end(op string, p *proc, whys ...string) error {
	if err := s.runUntil(op+" "+p.id+": the process ends", func() bool { return p.dead }); err != nil {
		return err
	}
	if !slices.Contains(whys, p.endWhy) {
		return fmt.Errorf("%w: %s %s: the process ended with %q, want one of %q\n%s", ErrScript, op, p.id, p.endWhy, whys, s.dump())
	}
	return nil
}

// runUntil steps the world until done reports true; it fails on a violation
// or once Limit of simulated time passed.
func (s *Script) runUntil(what string, done func() bool) error {
	w := s.w
	start := w.T
	limit := cmp0(s.Limit, DefaultScriptLimit)
	for {
		if w.violation != nil {
			return fmt.Errorf("%s: %w\n%s", what, w.violation, s.dump())
		}
		if done() {
			return nil
		}
		if w.T-start >= limit {
			return fmt.Errorf("%w: %s: not done within %v of simulated time (%s)\n%s", ErrScript, what, limit, s.unsettled(), s.dump())
		}
		w.step++
		w.tick()
	}
}

func cmp0(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// unsettled says why the world is not settled (see Settle), or "".
func (s *Script) unsettled() string {
	w := s.w
	a := w.auth
	if len(a.Order) == 0 && len(w.alive()) == 0 {
		return ""
	}
	switch {
	case len(a.Pending) > 0:
		return fmt.Sprintf("%d claims waiting", len(a.Pending))
	case a.DeclVersion == 0:
		return "partitions not declared yet"
	case a.Phase() != decider.PhaseStable:
		return "phase " + a.Phase().String()
	case !w.settled():
		return "the leader has a decision to make"
	}
	for _, id := range a.Order {
		m := a.Members[id]
		if p := w.byNonce[m.Nonce]; p == nil || p.dead {
			return fmt.Sprintf("member %s/%d has no running process", m.ID, m.Incarnation)
		}
	}
	for _, p := range w.alive() {
		if why := s.procUnsettled(p); why != "" {
			return why
		}
	}
	return ""
}

func (s *Script) procUnsettled(p *proc) string {
	w := s.w
	id, inc, ok := p.m.Identity()
	switch {
	case p.closing || p.leaving:
		return p.name() + " is ending"
	case !ok:
		return p.name() + " waits for its claim"
	case p.m.Stopped() != rawmember.NotStopped:
		return fmt.Sprintf("%s stopped (%v)", p.name(), p.m.Stopped())
	case p.cursor < len(w.st.log):
		return fmt.Sprintf("%s's fold is %d records behind", p.name(), len(w.st.log)-p.cursor)
	case !p.m.LeaseValid(p.now(w.T)):
		return p.name() + " has no valid lease"
	case len(p.calls) > 0:
		return fmt.Sprintf("%s's application has %d handler calls to make", p.name(), len(p.calls))
	}
	held := 0
	for pid, pn := range w.universe {
		i, declared := w.auth.PartitionIndex(pn)
		mine := declared && w.auth.Owners[i].Owner == id && w.auth.Owners[i].Inc == inc
		act := p.acting[pid]
		if mine != act.on || (mine && act.token != w.auth.Owners[i].FencingToken()) {
			return fmt.Sprintf("%s's application acts on %s: %v (token %v), the log gives it: %v", p.name(), pn, act.on, act.token, mine)
		}
		if !mine {
			continue
		}
		held++
		if p.h != nil {
			if ho, ok := p.handed[pn]; !ok || ho.a.Token != act.token {
				return fmt.Sprintf("%s's Handler does not hold %s with token %v", p.name(), pn, act.token)
			}
		}
	}
	if p.h != nil && len(p.handed) != held {
		return fmt.Sprintf("%s's Handler holds %d partitions, the log gives it %d", p.name(), len(p.handed), held)
	}
	return ""
}

// dump is the world's state and its last events, for a failure report.
func (s *Script) dump() string {
	w := s.w
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d, t=%v, step %d\nstate:\n%s", w.opt.Seed, w.T, w.step, w.describe())
	for _, p := range w.alive() {
		if p.h == nil {
			continue
		}
		var ids []string
		for _, o := range p.d.Held() {
			ids = append(ids, o.ID)
		}
		fmt.Fprintf(&b, "  proc %s: handed out %v, %d calls to make\n", p.name(), ids, len(p.calls))
	}
	fmt.Fprintf(&b, "last %d events:\n  %s\n", len(w.trace), strings.Join(w.traceLines(), "\n  "))
	return b.String()
}

// --- the application's Handler ----------------------------------------------

// handedOut is an assignment a process's Handler holds, with the cancel of
// its Context.
type handedOut struct {
	a      parti.Assignment
	cancel context.CancelFunc
}

// callAssigned calls p's Handler for the Assigned call c, with a fresh
// Context (cancelled when the partition is revoked or the process ends).
func (w *world) callAssigned(p *proc, c rawmember.Call) {
	if p.h == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := parti.Assignment{Partition: c.Owned.ID, Index: c.Owned.Index, Token: c.Owned.Token, Context: ctx}
	if p.handed == nil {
		p.handed = map[string]handedOut{}
	}
	if old, ok := p.handed[a.Partition]; ok {
		old.cancel()
	}
	p.handed[a.Partition] = handedOut{a: a, cancel: cancel}
	w.tracef("app of %s: Assigned(%s, %d, %v)", p.name(), a.Partition, a.Index, a.Token)
	p.h.Assigned(a)
}

// callRevoked calls p's Handler for the Revoked call c, its reason
// converted, with the assignment's Context, cancelled.
func (w *world) callRevoked(p *proc, c rawmember.Call) {
	if p.h == nil {
		return
	}
	a := parti.Assignment{Partition: c.Owned.ID, Index: c.Owned.Index, Token: c.Owned.Token}
	if ho, ok := p.handed[a.Partition]; ok {
		ho.cancel()
		a.Context = ho.a.Context
		delete(p.handed, a.Partition)
	}
	why := parti.RevokeReason(c.Why)
	w.tracef("app of %s: Revoked(%s, %d, %v)", p.name(), a.Partition, a.Index, why)
	p.h.Revoked(a, why)
}

// reindexHanded records that a re-declaration moved a held partition's
// index (no call: the Assignment names the new index).
func (w *world) reindexHanded(p *proc, o rawmember.Owned) {
	if ho, ok := p.handed[o.ID]; ok {
		ho.a.Index = o.Index
		p.handed[o.ID] = ho
	}
}

// dropHanded ends the Contexts of what p's Handler holds when the process
// ends, with no call (a dead process makes none).
func (w *world) dropHanded(p *proc) {
	// Cancels only: the order reaches no output.
	for _, ho := range p.handed {
		ho.cancel()
	}
	clear(p.handed)
}
