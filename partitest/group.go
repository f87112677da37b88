package partitest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/liveness"
	"github.com/parti-io/parti/rawmember"
)

// TB is the part of testing.TB the kit uses: *testing.T, *testing.B and
// *testing.F satisfy it. Fatalf must not return. When the TB also has a
// Cleanup(func()) method (testing's do), every Assignment context still open
// is cancelled when the test ends.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Options configure a Group. The zero value of every field means its
// default.
type Options struct {
	// Partitions is the declared partition set; Weights are optional
	// weights, parallel to it; Strategy names the assignment strategy
	// (default "sticky"). Every member declares the same set.
	Partitions []string
	Weights    []uint32
	Strategy   string
	// Timings are the liveness timings (default liveness.Test(): heartbeat
	// 500 ms, expiry 3 s, lease 1.4 s).
	Timings parti.Timings
	// Window batches planned joins before one rebalance (default 1 s, as
	// in parti.Config). ExpectedMembers closes it early once that many
	// members are live.
	Window          time.Duration
	ExpectedMembers int
	// Grace is how long a closed member keeps its ID and partitions
	// (default 30 s, as in parti.Config).
	Grace time.Duration
	// Tick is the step by which Settle and Advance move the clock (default
	// Timings.Heartbeat / 4, the real member's timer).
	Tick time.Duration
	// SettleLimit bounds the simulated time one Settle, Join or Leave may
	// take before the test fails (default 1 min + 4 × (Window + Expiry)).
	SettleLimit time.Duration
}

// group is the group ID on the kit's subjects.
const group = "partitest"

// maxRounds bounds the rounds one pump may take at one reading before the
// kit calls it a livelock.
const maxRounds = 10000

// Group is a parti group on an in-memory log, run on the test's goroutine.
// Simulated time moves only inside Advance, Settle, Join and Leave; every
// action a member asks for is carried out at once, and every Handler call is
// made on the goroutine calling those methods. A Group is not safe for
// concurrent use, and a Handler must not call the Group's or a Member's
// Join, Settle, Advance, Leave, Close or Crash (it may read: Assigned, State,
// Owners, Records, Now).
type Group struct {
	tb     TB
	opt    Options
	st     *stream
	state  *decider.State // the one authoritative fold of the log subject
	now    time.Duration
	ctx    context.Context
	cancel context.CancelFunc

	members []*Member // running, in join order
	crashed []*Member // crashed and perhaps not yet expired
	nonces  int
	busy    bool
}

// NewGroup returns an empty group. It fails the test if the options are
// invalid (the same rules as parti.Config.Validate).
func NewGroup(tb TB, opt Options) *Group {
	tb.Helper()
	if opt.Timings == (parti.Timings{}) {
		opt.Timings = liveness.Test()
	}
	if opt.Window == 0 {
		opt.Window = time.Second
	}
	if opt.Grace == 0 {
		opt.Grace = 30 * time.Second
	}
	if opt.Strategy == "" {
		opt.Strategy = "sticky"
	}
	if opt.Tick == 0 {
		opt.Tick = opt.Timings.Heartbeat / 4
	}
	if opt.SettleLimit == 0 {
		opt.SettleLimit = time.Minute + 4*(opt.Window+opt.Timings.Expiry)
	}
	cfg := parti.Config{
		Group: group, Partitions: opt.Partitions, Weights: opt.Weights, Strategy: opt.Strategy,
		Timings: opt.Timings, Window: opt.Window, ExpectedMembers: opt.ExpectedMembers, Grace: opt.Grace,
		HeartbeatTTL: max(2*time.Minute, 2*opt.Timings.Expiry),
	}
	if err := cfg.Validate(); err != nil {
		tb.Fatalf("partitest: NewGroup: %v", err)
	}
	if opt.Tick < 0 || opt.SettleLimit < 0 {
		tb.Fatalf("partitest: NewGroup: Tick (%v) and SettleLimit (%v) must be ≥ 0", opt.Tick, opt.SettleLimit)
	}
	opt.Partitions = slices.Clone(opt.Partitions)
	opt.Weights = slices.Clone(opt.Weights)
	ctx, cancel := context.WithCancel(context.Background())
	if c, ok := tb.(interface{ Cleanup(func()) }); ok {
		c.Cleanup(cancel)
	}
	return &Group{tb: tb, opt: opt, st: newStream(group), state: decider.New(), ctx: ctx, cancel: cancel}
}

func (g *Group) fatalf(format string, args ...any) {
	g.tb.Helper()
	g.tb.Fatalf("partitest: "+format, args...)
	panic("partitest: TB.Fatalf returned")
}

// enter guards the methods that run the group against reentrant calls from a
// Handler.
func (g *Group) enter(method string) func() {
	g.tb.Helper()
	if g.busy {
		g.fatalf("%s called from a Handler", method)
	}
	g.busy = true
	return func() { g.busy = false }
}

// Join starts a member that claims id (empty: the lowest free worker-N slot)
// with handler h (nil: none) and returns once the claim is granted. A claim
// of an ID whose holder crashed waits, in simulated time, until the holder is
// expired; a claim of the ID of a member closed for a restart takes its
// partitions over with zero moves. Join fails the test if a running member
// holds id or the claim is not granted within Options.SettleLimit.
func (g *Group) Join(id string, h parti.Handler) *Member {
	g.tb.Helper()
	defer g.enter("Join")()
	if id != "" {
		if err := events.ValidID(id); err != nil {
			g.fatalf("Join(%q): %v", id, err)
		}
		for _, m := range g.members {
			if m.id == id {
				g.fatalf("Join(%q): a running member holds this ID (Close, Leave or Crash it first)", id)
			}
		}
	}
	g.nonces++
	drv := rawmember.NewDriver(rawmember.Config{
		ID: id, Nonce: fmt.Sprintf("partitest-%d", g.nonces), Timings: g.opt.Timings,
		Window: g.opt.Window, ExpectedMembers: g.opt.ExpectedMembers, Grace: g.opt.Grace,
		Declare: g.opt.Partitions != nil, Partitions: g.opt.Partitions, Weights: g.opt.Weights,
		Strategy: g.opt.Strategy,
	})
	raw := drv.Member()
	ctx, cancel := context.WithCancel(g.ctx)
	m := &Member{g: g, drv: drv, h: h, ctx: ctx, cancel: cancel, owned: map[string]*owned{}}
	g.members = append(g.members, m)
	g.runUntil(fmt.Sprintf("Join(%q): the claim was not granted", id), func() bool {
		if r := raw.Stopped(); r != rawmember.NotStopped {
			g.fatalf("Join(%q): the claim ended: %s", id, r)
		}
		_, _, ok := raw.Identity()
		return ok
	})
	m.id, m.inc, _ = raw.Identity()
	return m
}

// Settle runs the group, moving the clock by Options.Tick, until it is
// settled: every crashed member has been expired, the partition set is
// declared, no window is open, every partition is owned, no move is in
// flight, the leader has nothing left to decide, and every running member's
// Handler holds exactly what the log gives it. It does not wait for a
// closed member's grace to end (its partitions are held for a restart: use
// Advance). With no member running it returns at once. It fails the test if
// the group has not settled within Options.SettleLimit.
func (g *Group) Settle() {
	g.tb.Helper()
	defer g.enter("Settle")()
	g.runUntil("Settle: the group did not settle", func() bool { return g.unsettled() == "" })
}

// Advance moves the clock by d in steps of Options.Tick, running the group
// at each.
func (g *Group) Advance(d time.Duration) {
	g.tb.Helper()
	defer g.enter("Advance")()
	end := g.now + d
	g.pump()
	for g.now < end {
		g.now = min(g.now+g.opt.Tick, end)
		g.pump()
	}
}

// runUntil runs the group, moving the clock by a tick at a time, until done
// reports true; it fails the test with what after Options.SettleLimit.
func (g *Group) runUntil(what string, done func() bool) {
	g.tb.Helper()
	start := g.now
	for {
		g.pump()
		if done() {
			return
		}
		if g.now-start >= g.opt.SettleLimit {
			why := g.unsettled()
			if why == "" {
				why = "settled, but not done"
			}
			g.fatalf("%s within %v of simulated time (%s)\n%s", what, g.opt.SettleLimit, why, g.dump())
		}
		g.now += g.opt.Tick
	}
}

// pump lets every running member step at the current reading, again and
// again, until none of them does anything more.
func (g *Group) pump() {
	g.tb.Helper()
	for range maxRounds {
		progress := false
		for _, m := range slices.Clone(g.members) {
			if m.step() {
				progress = true
			}
		}
		if !progress {
			return
		}
	}
	g.fatalf("the group did not come to rest at %v after %d rounds\n%s", g.now, maxRounds, g.dump())
}

// unsettled says why the group is not settled, or "" when it is.
func (g *Group) unsettled() string {
	s := g.state
	if len(g.members) == 0 {
		return ""
	}
	for _, c := range g.crashed {
		if s.Incarnation(c.id, c.inc) != nil {
			return fmt.Sprintf("crashed member %s/%d not expired yet", c.id, c.inc)
		}
	}
	if len(s.Pending) > 0 {
		return fmt.Sprintf("%d claims waiting", len(s.Pending))
	}
	if g.opt.Partitions != nil && s.DeclVersion == 0 {
		return "partitions not declared yet"
	}
	if ph := s.Phase(); ph != decider.PhaseStable {
		return "phase " + ph.String()
	}
	l, ok := s.Leader()
	if !ok {
		return "no leader"
	}
	if d, err := decider.Decide(s, l.ID, l.Incarnation); err != nil || d != nil {
		return "the leader has a decision to make"
	}
	for _, m := range g.members {
		if why := m.unsettled(); why != "" {
			return why
		}
	}
	return ""
}

// apply folds records the stream stored into the authoritative state and
// checks the state's invariants after each.
func (g *Group) apply(recs []events.Record) {
	g.tb.Helper()
	for _, r := range recs {
		out := decider.Apply(g.state, r)
		if out.Kind == decider.Rejected || out.Kind == decider.Skipped {
			g.fatalf("the fold %s record %d (%s): %s", out.Kind, r.Seq, r.Event.Type(), out.Reason)
		}
		if err := decider.CheckInvariants(g.state); err != nil {
			g.fatalf("invariant violated after record %d (%s): %v", r.Seq, r.Event.Type(), err)
		}
	}
}

// heartbeatAppended tells the members watching subject about a message stored
// on it, as their watches would.
func (g *Group) heartbeatAppended(subject string, seq uint64, v *events.ExpiryVerdict) {
	for _, m := range g.members {
		if m.watch == subject {
			m.raw().VictimMessage(m.watchMember, m.watchInc, seq, v, g.now)
		}
	}
}

// holder returns the running member other than not whose Handler holds
// partition p, or nil.
func (g *Group) holder(p string, not *Member) *Member {
	for _, m := range g.members {
		if _, ok := m.owned[p]; ok && m != not {
			return m
		}
	}
	return nil
}

func (g *Group) drop(m *Member) {
	g.members = slices.DeleteFunc(g.members, func(x *Member) bool { return x == m })
}

// Now returns the simulated time since NewGroup.
func (g *Group) Now() time.Duration { return g.now }

// State returns a copy of the group's folded state.
func (g *Group) State() *decider.State { return g.state.Clone() }

// Owners maps each owned partition to its owner's ID, as the log says (a
// crashed member owns its partitions until it is expired, a closed one
// until its grace ends or its ID is taken over).
func (g *Group) Owners() map[string]string {
	out := make(map[string]string, len(g.state.Owners))
	for i, o := range g.state.Owners {
		if o.Owner != "" {
			out[g.state.Partitions[i]] = o.Owner
		}
	}
	return out
}

// Records returns the log subject's records so far, in order: the audit
// trail, for assertions such as "exactly one AssignmentDecided".
func (g *Group) Records() []events.Record { return slices.Clone(g.st.log) }

// dump describes the group for a failure message.
func (g *Group) dump() string {
	var b strings.Builder
	s := g.state
	fmt.Fprintf(&b, "  at %v, log at %d, phase %s, window %v, %d unowned, %d in flight\n",
		g.now, s.LastSeq, s.Phase(), s.Window, s.Unowned(), s.InFlight())
	for _, id := range s.Order {
		mm := s.Members[id]
		fmt.Fprintf(&b, "  member %s/%d live=%v leaving=%v closing=%v owns %d\n",
			mm.ID, mm.Incarnation, mm.Live(), mm.Leaving, mm.Closing, len(s.Owned(mm.ID, mm.Incarnation)))
	}
	for _, c := range s.Pending {
		fmt.Fprintf(&b, "  claim of %s waiting since %d\n", c.ID, c.Seq)
	}
	for _, m := range g.members {
		fmt.Fprintf(&b, "  running %s/%d: handler holds %v\n", m.id, m.inc, slices.Sorted(maps.Keys(m.owned)))
	}
	return b.String()
}
