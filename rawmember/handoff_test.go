package rawmember

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/liveness"
)

// stepAcked steps m at now and acknowledges the heartbeat it sends, so that
// its lease is valid.
func stepAcked(t *testing.T, m *Member, s *decider.State, now time.Duration) {
	t.Helper()
	m.Step(s, now)
	for _, a := range m.Actions() {
		if a.Kind == ActHeartbeat {
			m.HeartbeatAcked(a.ID, s.LastSeq+1000, now)
		}
	}
	m.Step(s, now)
	m.Actions()
}

// callsString renders calls as "+p0 -p1(moved)" for comparisons.
func callsString(cs []Call) []string {
	var out []string
	for _, c := range cs {
		if c.Revoke {
			out = append(out, "-"+c.Owned.ID+"("+c.Why.String()+")")
		} else {
			out = append(out, "+"+c.Owned.ID)
		}
	}
	return out
}

// The contract of one member: assignments in index order; partitions left
// out of a declaration revoked as dropped (and the ones whose index changed
// reported); a lapsed lease revokes everything as lease-lost; Stop revokes
// as stopped and nothing is assigned after it.
func TestHandoffReasonsAndOrder(t *testing.T) {
	l := &logT{t: t, s: decider.New()}
	l.group([]string{"a"}, []string{"p0", "p1", "p2", "p3"})
	a := New(Config{Nonce: "na", Timings: liveness.Test()})
	a.Start()
	h := NewHandoff()
	stepAcked(t, a, l.s, 0)
	rd := h.Step(a, l.s, 0)
	if got, want := callsString(rd.Calls), []string{"+p0", "+p1", "+p2", "+p3"}; !slices.Equal(got, want) {
		t.Fatalf("join: %v, want %v", got, want)
	}

	ds, err := decider.Declare(l.s, "a", 1, []string{"p0", "p2"}, nil, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	l.apply(ds[0])
	stepAcked(t, a, l.s, time.Millisecond)
	rd = h.Step(a, l.s, time.Millisecond)
	// p2's index changed, and so did its token: revoked and assigned again.
	if got, want := callsString(rd.Calls), []string{"-p1(dropped)", "-p2(moved)", "-p3(dropped)", "+p2"}; !slices.Equal(got, want) {
		t.Fatalf("re-declaration: %v, want %v", got, want)
	}
	for _, c := range rd.Calls {
		h.Returned(a, c)
	}

	later := time.Hour // far past the lease
	a.Step(l.s, later)
	hb := a.Actions() // a heartbeat, answered below
	rd = h.Step(a, l.s, later)
	if got, want := callsString(rd.Calls), []string{"-p0(lease-lost)", "-p2(lease-lost)"}; !slices.Equal(got, want) {
		t.Fatalf("lease lapsed: %v, want %v", got, want)
	}
	for _, c := range rd.Calls {
		h.Returned(a, c)
	}
	for _, act := range hb {
		if act.Kind == ActHeartbeat {
			a.HeartbeatAcked(act.ID, l.s.LastSeq+2000, later+time.Millisecond)
		}
	}
	stepAcked(t, a, l.s, later+time.Millisecond)
	rd = h.Step(a, l.s, later+time.Millisecond)
	if got, want := callsString(rd.Calls), []string{"+p0", "+p2"}; !slices.Equal(got, want) {
		t.Fatalf("lease back: %v, want %v", got, want)
	}
	rd = h.Stop(ReasonStopped)
	if got, want := callsString(rd.Calls), []string{"-p0(stopped)", "-p2(stopped)"}; !slices.Equal(got, want) {
		t.Fatalf("stop: %v, want %v", got, want)
	}
	stepAcked(t, a, l.s, later+2*time.Millisecond)
	if rd = h.Step(a, l.s, later+2*time.Millisecond); len(rd.Calls) != 0 {
		t.Fatalf("after Stop: %v, want no call", callsString(rd.Calls))
	}
	if h.Quiet() {
		t.Fatal("quiet with two Revoked calls not returned")
	}
}

// A partition moving away is revoked as moved, in index order, and let go of
// (its release becomes due) only once its Revoked call returned.
func TestHandoffLetsGoOnlyAfterRevokedReturned(t *testing.T) {
	l := &logT{t: t, s: decider.New()}
	l.group([]string{"a"}, []string{"p0", "p1", "p2", "p3", "p4", "p5"})
	a := New(Config{Nonce: "na", Timings: liveness.Test()})
	a.Start()
	h := NewHandoff()
	stepAcked(t, a, l.s, 0)
	h.Step(a, l.s, 0)
	l.apply(&events.MemberClaimed{ID: "b", Nonce: "nb", MaxProtocol: 1})
	l.apply(&events.WindowClosed{By: "a"})
	d, err := decider.Decide(l.s, "a", 1)
	if err != nil || d == nil {
		t.Fatalf("no decision for the joiner: %v", err)
	}
	l.apply(d)
	stepAcked(t, a, l.s, time.Millisecond)
	rd := h.Step(a, l.s, time.Millisecond)
	if len(rd.Calls) == 0 || rd.LetGo {
		t.Fatalf("moving: calls %v, let go %v: want revocations and nothing let go yet", callsString(rd.Calls), rd.LetGo)
	}
	var idx []uint32
	for _, c := range rd.Calls {
		if !c.Revoke || c.Why != ReasonMoved {
			t.Fatalf("moving: call %v, want only Revoked(moved)", callsString([]Call{c}))
		}
		idx = append(idx, c.Owned.Index)
	}
	if !slices.IsSorted(idx) {
		t.Fatalf("revocations out of index order: %v", idx)
	}
	if len(a.Revoking()) != len(rd.Calls) {
		t.Fatalf("the member released %d of %d before the Revoked calls returned", len(rd.Calls)-len(a.Revoking()), len(rd.Calls))
	}
	for i, c := range rd.Calls {
		if !h.Returned(a, c) {
			t.Fatalf("return %d: nothing let go", i)
		}
		if got := len(a.Revoking()); got != len(rd.Calls)-i-1 {
			t.Fatalf("after %d returns, %d still to let go, want %d", i+1, got, len(rd.Calls)-i-1)
		}
	}
	if got := len(h.Held()); got != 6-len(rd.Calls) {
		t.Fatalf("the application holds %d partitions, want the %d not moved", got, 6-len(rd.Calls))
	}
	if stop := h.Stop(ReasonStopped); len(stop.Calls) != 6-len(rd.Calls) || h.Quiet() {
		t.Fatalf("stop: %d calls, quiet %v: want %d revocations awaiting their return", len(stop.Calls), h.Quiet(), 6-len(rd.Calls))
	} else {
		for _, c := range stop.Calls {
			h.Returned(a, c)
		}
		if !h.Quiet() {
			t.Fatal("not quiet after every Revoked returned")
		}
	}
}

// A hand-off larger than MaxReleasesPerEvent is released in several events,
// none larger than the bound, together releasing every partition.
func TestLargeReleaseIsCutIntoEvents(t *testing.T) {
	n := 2*MaxReleasesPerEvent + 17
	parts := make([]string, n)
	for i := range parts {
		parts[i] = "p" + strconv.Itoa(i)
	}
	l := &logT{t: t, s: decider.New()}
	l.group([]string{"a"}, parts)
	a := New(Config{Nonce: "na", Timings: liveness.Test()})
	a.Start()
	stepAcked(t, a, l.s, 0)
	a.Leave()
	a.Actions()
	l.apply(&events.MemberLeft{Member: "a", Incarnation: 1})
	a.Step(l.s, time.Millisecond)
	a.Actions()
	for _, p := range a.Revoking() {
		a.LetGo(p)
	}
	a.Step(l.s, 2*time.Millisecond)
	released, appends := 0, 0
	for _, act := range a.Actions() {
		for _, ev := range act.Events {
			if r, ok := ev.(*events.PartitionsReleased); ok {
				appends++
				released += len(r.Released)
				if len(r.Released) > MaxReleasesPerEvent {
					t.Fatalf("one release event holds %d releases, more than %d", len(r.Released), MaxReleasesPerEvent)
				}
			}
		}
	}
	if released != n || appends != 3 {
		t.Fatalf("%d releases in %d events, want %d in 3", released, appends, n)
	}
}
