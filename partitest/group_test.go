package partitest_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/liveness"
	"github.com/parti-io/parti/partitest"
)

// call is one Handler call.
type call struct {
	member   string
	assigned bool // Assigned, else Revoked
	a        parti.Assignment
	why      parti.RevokeReason
}

func (c call) String() string {
	if c.assigned {
		return fmt.Sprintf("%s+%s", c.member, c.a.Partition)
	}
	return fmt.Sprintf("%s-%s(%s)", c.member, c.a.Partition, c.why)
}

// journal records every Handler call of a group's members in order, and
// checks on each what the kit promises: one holder per partition, contexts
// live while assigned and cancelled when revoked, the log still showing a
// revoked ownership (its release comes only after Revoked returned).
type journal struct {
	t       *testing.T
	g       *partitest.Group
	calls   []call
	holders map[string]string
}

func newJournal(t *testing.T, g *partitest.Group) *journal {
	return &journal{t: t, g: g, holders: map[string]string{}}
}

func (j *journal) handler(id string) parti.Handler {
	return parti.HandlerFuncs{
		OnAssigned: func(a parti.Assignment) {
			j.calls = append(j.calls, call{member: id, assigned: true, a: a})
			if h, ok := j.holders[a.Partition]; ok {
				j.t.Errorf("%s assigned %s while %s holds it", id, a.Partition, h)
			}
			j.holders[a.Partition] = id
			if a.Context.Err() != nil {
				j.t.Errorf("%s assigned %s with a cancelled context", id, a.Partition)
			}
			j.checkLog(id, a, "Assigned")
		},
		OnRevoked: func(a parti.Assignment, why parti.RevokeReason) {
			j.calls = append(j.calls, call{member: id, a: a, why: why})
			if h := j.holders[a.Partition]; h != id {
				j.t.Errorf("%s revoked %s held by %q", id, a.Partition, h)
			}
			delete(j.holders, a.Partition)
			if a.Context.Err() == nil {
				j.t.Errorf("%s revoked %s before its context was cancelled", id, a.Partition)
			}
			j.checkLog(id, a, "Revoked")
		},
	}
}

// crash crashes m: a dead process holds nothing.
func (j *journal) crash(m *partitest.Member) {
	m.Crash()
	for p, h := range j.holders {
		if h == m.ID() {
			delete(j.holders, p)
		}
	}
}

// checkLog checks that the log shows id owning a with a's token.
func (j *journal) checkLog(id string, a parti.Assignment, during string) {
	s := j.g.State()
	i, ok := s.PartitionIndex(a.Partition)
	if !ok || i != a.Index {
		j.t.Errorf("during %s: %s is at index %d (%v), the assignment says %d", during, a.Partition, i, ok, a.Index)
		return
	}
	if o := s.Owners[i]; o.Owner != id || o.FencingToken() != a.Token {
		j.t.Errorf("during %s(%s) of %s: the log shows owner %q token %v, want token %v", during, a.Partition, id, o.Owner, o.FencingToken(), a.Token)
	}
}

// since returns the calls from index n on, as strings.
func (j *journal) since(n int) []string {
	var out []string
	for _, c := range j.calls[n:] {
		out = append(out, c.String())
	}
	return out
}

// of returns the calls from index n on made to member id, as strings.
func (j *journal) of(id string, n int) []string {
	var out []string
	for _, c := range j.calls[n:] {
		if c.member == id {
			out = append(out, c.String())
		}
	}
	return out
}

func partitions(n int) []string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = fmt.Sprintf("p%02d", i)
	}
	return ps
}

// decisions returns the decisions on the log.
func decisions(g *partitest.Group) []*events.AssignmentDecided {
	var out []*events.AssignmentDecided
	for _, r := range g.Records() {
		if d, ok := r.Event.(*events.AssignmentDecided); ok {
			out = append(out, d)
		}
	}
	return out
}

// moved counts the partitions d moves.
func moved(d *events.AssignmentDecided) int {
	n := 0
	for _, m := range d.Moves {
		n += m.Parts.Len()
	}
	return n
}

// byOwner inverts g.Owners: member ID to its partitions, sorted.
func byOwner(g *partitest.Group) map[string][]string {
	out := map[string][]string{}
	for p, o := range g.Owners() {
		out[o] = append(out[o], p)
	}
	for _, ps := range out {
		slices.Sort(ps)
	}
	return out
}

func names(as []parti.Assignment) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Partition)
	}
	return out
}

// start joins members ids and settles.
func start(t *testing.T, opt partitest.Options, ids ...string) (*partitest.Group, *journal, map[string]*partitest.Member) {
	t.Helper()
	g := partitest.NewGroup(t, opt)
	j := newJournal(t, g)
	ms := map[string]*partitest.Member{}
	for _, id := range ids {
		ms[id] = g.Join(id, j.handler(id))
	}
	g.Settle()
	return g, j, ms
}

func TestColdStartAssignsEveryPartitionOnce(t *testing.T) {
	ps := partitions(12)
	g := partitest.NewGroup(t, partitest.Options{Partitions: ps})
	j := newJournal(t, g)
	ms := map[string]*partitest.Member{}
	for _, id := range []string{"a", "b", "c"} {
		ms[id] = g.Join(id, j.handler(id))
	}
	if len(j.calls) != 0 || g.Now() != 0 {
		t.Fatalf("while the window gathers joins at %v: calls %v", g.Now(), j.since(0))
	}
	g.Settle()
	if g.Now() != time.Second {
		t.Errorf("settled at %v, want when the 1 s cold-start window closed", g.Now())
	}
	ds := decisions(g)
	if len(ds) != 1 || ds[0].Reason != events.DecideColdStart || moved(ds[0]) != 12 {
		t.Fatalf("decisions %+v, want one cold-start decision placing 12", ds)
	}
	seen := map[string]int{}
	for _, c := range j.calls {
		if !c.assigned {
			t.Errorf("unexpected %v", c)
		}
		seen[c.a.Partition]++
	}
	if len(j.calls) != 12 || len(seen) != 12 {
		t.Errorf("%d calls over %d partitions, want 12 assignments, one per partition: %v", len(j.calls), len(seen), j.since(0))
	}
	owners := g.Owners()
	var decSeq uint64
	for _, r := range g.Records() {
		if r.Event.Type() == events.TypeAssignmentDecided {
			decSeq = r.Seq
		}
	}
	for id, m := range ms {
		got := m.Assigned()
		if len(got) != 4 {
			t.Errorf("%s holds %v, want 4 partitions (sticky balances 12 over 3)", id, names(got))
		}
		if m.Incarnation() != 1 || !slices.Equal(names(got), byOwner(g)[id]) {
			t.Errorf("%s/%d holds %v, the log gives it %v", id, m.Incarnation(), names(got), byOwner(g)[id])
		}
		for _, a := range got {
			if owners[a.Partition] != id || a.Token != (events.Token{Seq: decSeq, Incarnation: 1}) || a.Context.Err() != nil {
				t.Errorf("%s holds %s with token %v (log: owner %s, decision at %d)", id, a.Partition, a.Token, owners[a.Partition], decSeq)
			}
		}
	}
	if !ms["a"].IsLeader() || ms["b"].IsLeader() {
		t.Errorf("a (joined first) should lead, alone")
	}
	n := len(g.Records())
	g.Settle()
	g.Advance(10 * time.Second)
	if len(j.calls) != 12 || len(decisions(g)) != 1 {
		t.Errorf("a settled group changed: %v", j.since(12))
	}
	// Heartbeats go to their own subjects, never to the log.
	if len(g.Records()) != n {
		t.Errorf("the log grew from %d to %d records while nothing happened", n, len(g.Records()))
	}
}

func TestScaleUpMovesTheMinimum(t *testing.T) {
	g, j, ms := start(t, partitest.Options{Partitions: partitions(12)}, "a", "b", "c")
	before := g.Owners()
	n0 := len(j.calls)
	t0 := g.Now()
	ms["d"] = g.Join("d", j.handler("d"))
	g.Settle()
	if d := g.Now() - t0; d != time.Second {
		t.Errorf("scale-up took %v, want the 1 s window", d)
	}
	ds := decisions(g)
	if len(ds) != 2 || ds[1].Reason != events.DecideRebalance || moved(ds[1]) != 3 {
		t.Fatalf("decisions %+v, want a rebalance moving 3 after the cold start", ds[1:])
	}
	// d gets 3, the minimum; each came from its previous owner, which was
	// told "moved" before d was told "assigned".
	revokedAt := map[string]int{}
	var assigned []string
	for i, c := range j.calls[n0:] {
		switch {
		case c.assigned && c.member == "d":
			assigned = append(assigned, c.a.Partition)
			r, ok := revokedAt[c.a.Partition]
			if !ok || r > i {
				t.Errorf("d assigned %s (call %d) before its owner revoked it", c.a.Partition, i)
			}
		case !c.assigned && c.why == parti.RevokeMoved && before[c.a.Partition] == c.member:
			revokedAt[c.a.Partition] = i
		default:
			t.Errorf("unexpected call %v", c)
		}
	}
	if len(assigned) != 3 || len(revokedAt) != 3 {
		t.Errorf("calls %v, want 3 revocations and 3 assignments to d", j.since(n0))
	}
	for id, ps := range byOwner(g) {
		if len(ps) != 3 || len(ms[id].Assigned()) != 3 {
			t.Errorf("%s owns %v and holds %v, want 3", id, ps, names(ms[id].Assigned()))
		}
	}
}

func TestCrashIsTakenOverAfterExpiry(t *testing.T) {
	tm := liveness.Test()
	g, j, ms := start(t, partitest.Options{Partitions: partitions(12)}, "a", "b", "c")
	held := ms["b"].Assigned()
	if len(held) != 4 {
		t.Fatalf("b holds %v, want 4", names(held))
	}
	before := g.Owners()
	n0 := len(j.calls)
	crashAt := g.Now()
	j.crash(ms["b"])
	for _, a := range held {
		if a.Context.Err() == nil {
			t.Errorf("b's %s context lives on after the crash", a.Partition)
		}
	}
	if len(ms["b"].Assigned()) != 0 {
		t.Errorf("a crashed member holds %v", names(ms["b"].Assigned()))
	}

	// Before the expiry nothing moves: b's last heartbeat is at most one
	// interval old, and a judge waits the full expiry after it.
	g.Advance(tm.Expiry - tm.Heartbeat - time.Millisecond)
	if !maps.Equal(g.Owners(), before) || len(j.calls) != n0 || g.State().Member("b") == nil {
		t.Fatalf("before the expiry: owners %v (were %v), calls %v", g.Owners(), before, j.since(n0))
	}

	g.Settle()
	if took := g.Now() - crashAt; took <= tm.Expiry-tm.Heartbeat || took > tm.Expiry+tm.Heartbeat {
		t.Errorf("taken over %v after the crash, want about the %v expiry", took, tm.Expiry)
	}
	var removed *events.MemberRemoved
	for _, r := range g.Records() {
		if e, ok := r.Event.(*events.MemberRemoved); ok {
			if removed != nil {
				t.Errorf("a second removal %+v", e)
			}
			removed = e
		}
	}
	if removed == nil || removed.Member != "b" || removed.Reason != events.ReasonExpired || removed.VerdictSeq == 0 {
		t.Errorf("removal %+v, want b expired on a verdict", removed)
	}
	ds := decisions(g)
	if len(ds) != 2 || ds[1].Reason != events.DecideEmergency || moved(ds[1]) != 4 {
		t.Errorf("decisions %+v, want one emergency decision placing b's 4", ds)
	}
	// Exactly b's partitions were assigned, once each, to a or c; nothing
	// was revoked.
	got := map[string]string{}
	for _, c := range j.calls[n0:] {
		if !c.assigned || c.member == "b" || got[c.a.Partition] != "" {
			t.Errorf("unexpected call %v", c)
		}
		got[c.a.Partition] = c.member
	}
	if !slices.Equal(slices.Sorted(maps.Keys(got)), names(held)) {
		t.Errorf("taken over %v, want b's %v", got, names(held))
	}
	for p, o := range g.Owners() {
		if o == "b" || (before[p] != "b" && before[p] != o) {
			t.Errorf("%s is owned by %s, was %s", p, o, before[p])
		}
	}
}

func TestRollingRestartMovesNothing(t *testing.T) {
	opt := partitest.Options{Partitions: partitions(12)}
	g, j, ms := start(t, opt, "a", "b", "c")
	before := g.Owners()
	held := map[string][]string{}
	for id, m := range ms {
		held[id] = names(m.Assigned())
	}
	n0 := len(j.calls)
	for _, id := range []string{"a", "b", "c"} {
		ms[id].Close()
		if !maps.Equal(g.Owners(), before) {
			t.Fatalf("closing %s moved partitions: %v", id, g.Owners())
		}
		ms[id] = g.Join(id, j.handler(id))
		g.Settle()
	}
	g.Advance(31 * time.Second) // past every grace
	g.Settle()
	if ds := decisions(g); len(ds) != 1 {
		t.Errorf("%d decisions, want only the cold start's: %+v", len(ds), ds[1:])
	}
	for _, r := range g.Records() {
		if r.Event.Type() == events.TypeGraceEnded {
			t.Errorf("a grace ended although every ID was taken over: %+v", r.Event)
		}
	}
	if !maps.Equal(g.Owners(), before) {
		t.Errorf("owners %v, want %v", g.Owners(), before)
	}
	for _, id := range []string{"a", "b", "c"} {
		var want []string
		for _, p := range held[id] {
			want = append(want, fmt.Sprintf("%s-%s(stopped)", id, p))
		}
		for _, p := range held[id] {
			want = append(want, fmt.Sprintf("%s+%s", id, p))
		}
		if got := j.of(id, n0); !slices.Equal(got, want) {
			t.Errorf("%s's handlers saw %v, want %v", id, got, want)
		}
		for _, a := range ms[id].Assigned() {
			if a.Token.Incarnation != 2 {
				t.Errorf("%s holds %s with token %v, want incarnation 2", id, a.Partition, a.Token)
			}
		}
		if ms[id].Incarnation() != 2 || len(ms[id].Assigned()) != len(held[id]) {
			t.Errorf("%s/%d holds %v, want %v", id, ms[id].Incarnation(), names(ms[id].Assigned()), held[id])
		}
	}
}

func TestClosedMemberMovesWhenItsGraceEnds(t *testing.T) {
	g, j, ms := start(t, partitest.Options{Partitions: partitions(12), Grace: 10 * time.Second}, "a", "b", "c")
	before := g.Owners()
	held := names(ms["c"].Assigned())
	ms["c"].Close()
	n0 := len(j.calls)
	g.Settle() // nothing to do: the grace holds c's partitions
	g.Advance(9 * time.Second)
	if !maps.Equal(g.Owners(), before) || len(j.calls) != n0 {
		t.Fatalf("within the grace: owners %v, calls %v", g.Owners(), j.since(n0))
	}
	g.Advance(time.Second)
	g.Settle()
	var ended int
	for _, r := range g.Records() {
		if e, ok := r.Event.(*events.GraceEnded); ok && e.Member == "c" {
			ended++
		}
	}
	if ended != 1 {
		t.Errorf("%d grace ends for c, want 1", ended)
	}
	var got []string
	for _, c := range j.calls[n0:] {
		if !c.assigned || c.member == "c" {
			t.Errorf("unexpected call %v", c)
		}
		got = append(got, c.a.Partition)
	}
	slices.Sort(got)
	if !slices.Equal(got, held) || len(byOwner(g)["c"]) != 0 {
		t.Errorf("after the grace: assigned %v, want c's %v; owners %v", got, held, byOwner(g))
	}
}

func TestHandlerSeesRevokedBeforeAssigned(t *testing.T) {
	// Round robin reshuffles whenever the members change, so handlers both
	// lose and gain partitions.
	g, j, ms := start(t, partitest.Options{Partitions: partitions(6), Strategy: "round-robin"}, "a", "b")
	if got := byOwner(g); !slices.Equal(got["a"], []string{"p00", "p02", "p04"}) || !slices.Equal(got["b"], []string{"p01", "p03", "p05"}) {
		t.Fatalf("cold start %v", got)
	}

	// A join: a and b each hand two partitions off, then take one over
	// once its owner let go of it.
	n0 := len(j.calls)
	ms["c"] = g.Join("c", j.handler("c"))
	g.Settle()
	for id, want := range map[string][]string{
		"a": {"a-p02(moved)", "a-p04(moved)", "a+p03"},
		"b": {"b-p03(moved)", "b-p05(moved)", "b+p04"},
		"c": {"c+p05", "c+p02"}, // in the order b and a released them
	} {
		if got := j.of(id, n0); !slices.Equal(got, want) {
			t.Errorf("join: %s saw %v, want %v", id, got, want)
		}
	}
	// Across members: a partition's new owner is told after its old one.
	pos := map[string]int{}
	for i, c := range j.calls[n0:] {
		if !c.assigned {
			pos[c.a.Partition] = i
		} else if r, ok := pos[c.a.Partition]; !ok || r > i {
			t.Errorf("join: %v came before the revocation: %v", c, j.since(n0))
		}
	}

	// A crash: a's partitions, unowned once it is expired, go to b and c
	// at once in the same decision that moves p01 from b to c and p02 from
	// c to b. Each handler gets that change revocation first.
	n1 := len(j.calls)
	j.crash(ms["a"])
	g.Settle()
	if got, want := j.since(n1), []string{"c-p02(moved)", "c+p03", "b-p01(moved)", "b+p00", "b+p02", "c+p01"}; !slices.Equal(got, want) {
		t.Errorf("crash: calls %v, want %v", got, want)
	}
}

func TestLeaveHandsEverythingOff(t *testing.T) {
	g, j, ms := start(t, partitest.Options{Partitions: partitions(12)}, "a", "b", "c")
	held := names(ms["b"].Assigned())
	n0 := len(j.calls)
	ms["b"].Leave()
	calls := j.calls[n0:]
	if len(calls) != 2*len(held) {
		t.Fatalf("calls %v, want %d revocations then %d assignments", j.since(n0), len(held), len(held))
	}
	var got []string
	for i, c := range calls {
		if i < len(held) {
			if c.assigned || c.member != "b" || c.why != parti.RevokeStopped || c.a.Partition != held[i] {
				t.Errorf("call %d: %v, want b-%s(stopped)", i, c, held[i])
			}
			continue
		}
		if !c.assigned || c.member == "b" {
			t.Errorf("call %d: %v, want an assignment to a or c", i, c)
		}
		got = append(got, c.a.Partition)
	}
	slices.Sort(got)
	if !slices.Equal(got, held) {
		t.Errorf("assigned %v, want b's %v", got, held)
	}
	if g.State().Member("b") != nil || len(byOwner(g)["b"]) != 0 {
		t.Errorf("b is still in the group: %v", byOwner(g))
	}
	n1 := len(j.calls)
	g.Settle()
	if len(j.calls) != n1 {
		t.Errorf("Settle after the leave: %v", j.since(n1))
	}
}

func TestLastMemberLeaves(t *testing.T) {
	g, j, ms := start(t, partitest.Options{Partitions: partitions(4)}, "a")
	ms["a"].Leave()
	if len(g.Owners()) != 0 || len(g.State().Members) != 0 {
		t.Fatalf("after the last leave: owners %v, members %v", g.Owners(), g.State().Members)
	}
	g.Settle() // nobody runs: nothing to do
	n0 := len(j.calls)
	b := g.Join("b", j.handler("b"))
	g.Settle()
	if got := names(b.Assigned()); len(got) != 4 || len(j.calls) != n0+4 {
		t.Errorf("b holds %v after calls %v, want all 4", got, j.since(n0))
	}
}

func TestCrashedIDRejoinsAfterExpiry(t *testing.T) {
	tm := liveness.Test()
	g, j, ms := start(t, partitest.Options{Partitions: partitions(6)}, "a", "b")
	crashAt := g.Now()
	j.crash(ms["a"])
	a2 := g.Join("a", j.handler("a"))
	if a2.Incarnation() != 2 || g.Now()-crashAt < tm.Expiry-tm.Heartbeat {
		t.Fatalf("a/%d granted %v after the crash, want incarnation 2 after its expiry", a2.Incarnation(), g.Now()-crashAt)
	}
	g.Settle()
	total := len(a2.Assigned()) + len(ms["b"].Assigned())
	if total != 6 || len(g.Owners()) != 6 {
		t.Errorf("a/2 holds %v, b %v, want all 6 between them", names(a2.Assigned()), names(ms["b"].Assigned()))
	}
	if !ms["b"].IsLeader() {
		t.Errorf("b should lead once a/1 is gone")
	}
}

func TestDeterministic(t *testing.T) {
	run := func() []string {
		g, j, ms := start(t, partitest.Options{Partitions: partitions(20), Strategy: "consistent-hash"}, "a", "b", "c")
		j.crash(ms["b"])
		g.Join("d", nil)
		g.Settle()
		ms["a"].Close()
		g.Join("a", nil)
		ms["c"].Leave()
		g.Settle()
		var out []string
		for _, r := range g.Records() {
			out = append(out, fmt.Sprintf("%d %s %s", r.Seq, r.Time.Format(time.StampMilli), r.Body))
		}
		return out
	}
	first, second := run(), run()
	if !slices.Equal(first, second) {
		t.Errorf("two runs differ:\n%s\n---\n%s", strings.Join(first, "\n"), strings.Join(second, "\n"))
	}
}

// fatalTB records the kit's failures instead of ending the test.
type fatalTB struct{ msg string }

type fatal struct{}

func (*fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(fatal{})
}

// fails runs f and returns the kit's failure message ("" if none).
func fails(tb *fatalTB, f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(fatal); !ok {
				panic(r)
			}
		}
		msg = tb.msg
	}()
	f()
	return ""
}

func TestKitFailsTheTest(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(tb *fatalTB)
		want string
	}{
		{"invalid options", func(tb *fatalTB) {
			partitest.NewGroup(tb, partitest.Options{Partitions: []string{"x", "x"}})
		}, "duplicate"},
		{"settle limit", func(tb *fatalTB) {
			g := partitest.NewGroup(tb, partitest.Options{Partitions: partitions(2), SettleLimit: 500 * time.Millisecond})
			g.Join("a", nil)
			g.Settle() // the cold-start window is 1 s
		}, "did not settle"},
		{"ID in use", func(tb *fatalTB) {
			g := partitest.NewGroup(tb, partitest.Options{Partitions: partitions(2)})
			g.Join("a", nil)
			g.Join("a", nil)
		}, "a running member holds this ID"},
		{"stopped member", func(tb *fatalTB) {
			g := partitest.NewGroup(tb, partitest.Options{Partitions: partitions(2)})
			m := g.Join("a", nil)
			m.Crash()
			m.Close()
		}, "already crashed"},
		{"reentrant handler", func(tb *fatalTB) {
			g := partitest.NewGroup(tb, partitest.Options{Partitions: partitions(2)})
			g.Join("a", parti.HandlerFuncs{OnAssigned: func(parti.Assignment) { g.Settle() }})
			g.Settle()
		}, "Settle called from a Handler"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := &fatalTB{}
			if got := fails(tb, func() { tc.run(tb) }); !strings.Contains(got, tc.want) {
				t.Errorf("failure %q, want it to mention %q", got, tc.want)
			}
		})
	}
}
