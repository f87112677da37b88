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

// driverUp steps d at now, acknowledges its heartbeats and steps it again,
// so its lease is valid; it returns the second step's output.
func driverUp(t *testing.T, d *Driver, s *decider.State, now time.Duration) Output {
	t.Helper()
	out := d.Step(s, now)
	for _, a := range out.Actions {
		if a.Kind == ActHeartbeat {
			out.Member.HeartbeatAcked(a.ID, s.LastSeq+1000, now)
		}
	}
	return d.Step(s, now)
}

// appended returns the events of the append actions in acts.
func appended(acts []Action) []events.Event {
	var out []events.Event
	for _, a := range acts {
		if a.Kind == ActAppend {
			out = append(out, a.Events...)
		}
	}
	return out
}

func hasEvent[T events.Event](evs []events.Event) bool {
	for _, ev := range evs {
		if _, ok := ev.(T); ok {
			return true
		}
	}
	return false
}

// A close is appended only once every Revoked call returned (a new process
// with the ID may be granted the partitions from then on), and the driver
// reports the process closed once the fold shows it.
func TestDriverClosesOnlyAfterEveryRevokedReturned(t *testing.T) {
	l := &logT{t: t, s: decider.New()}
	l.group([]string{"a"}, []string{"p0", "p1", "p2", "p3"})
	d := NewDriver(Config{Nonce: "na", Timings: liveness.Test()})
	out := driverUp(t, d, l.s, 0)
	if got, want := callsString(out.Ready.Calls), []string{"+p0", "+p1", "+p2", "+p3"}; !slices.Equal(got, want) {
		t.Fatalf("join: %v, want %v", got, want)
	}
	rd := d.Close()
	if got, want := callsString(rd.Calls), []string{"-p0(stopped)", "-p1(stopped)", "-p2(stopped)", "-p3(stopped)"}; !slices.Equal(got, want) {
		t.Fatalf("close: %v, want %v", got, want)
	}
	for _, c := range rd.Calls[:3] {
		d.Returned(c)
	}
	out = d.Step(l.s, time.Millisecond)
	if evs := appended(out.Actions); hasEvent[*events.MemberClosing](evs) {
		t.Fatalf("the close was appended while p3's Revoked call had not returned: %v", evs)
	}
	if len(out.Ready.Calls) != 0 || out.Closed {
		t.Fatalf("step while closing: calls %v, closed %v", callsString(out.Ready.Calls), out.Closed)
	}
	d.Returned(rd.Calls[3])
	out = d.Step(l.s, 2*time.Millisecond)
	if evs := appended(out.Actions); !hasEvent[*events.MemberClosing](evs) {
		t.Fatalf("every Revoked call returned, and no close appended: %v", evs)
	}
	if out.Closed {
		t.Fatal("closed before the close was in the fold")
	}
	l.apply(&events.MemberClosing{Member: "a", Incarnation: 1})
	if out = d.Step(l.s, 3*time.Millisecond); !out.Closed {
		t.Fatal("the fold shows the close, and the driver does not end the process")
	}
	if r, rejoin := d.Stopped(); rejoin {
		t.Fatalf("a closing process rejoins (%v)", r)
	}
}

// A partition whose Revoked call returned before the leader named its next
// owner is released in the very step that sees the decision, not a step
// later.
func TestDriverReleasesInTheStepThatLetsGo(t *testing.T) {
	l := &logT{t: t, s: decider.New()}
	l.group([]string{"a", "b"}, []string{"p0", "p1", "p2", "p3"})
	d := NewDriver(Config{Nonce: "nb", Timings: liveness.Test()})
	out := driverUp(t, d, l.s, 0)
	if len(out.Ready.Calls) != 2 {
		t.Fatalf("b was assigned %v, want 2 partitions", callsString(out.Ready.Calls))
	}
	rd := d.Leave()
	for _, c := range rd.Calls {
		d.Returned(c)
	}
	l.apply(&events.MemberLeft{Member: "b", Incarnation: 1})
	out = d.Step(l.s, time.Millisecond)
	if hasEvent[*events.PartitionsReleased](appended(out.Actions)) {
		t.Fatal("released before the leader named the next owner")
	}
	dec, _ := decider.Decide(l.s, "a", 1)
	if dec == nil {
		t.Fatal("the leader did not move the leaver's partitions")
	}
	l.apply(dec)
	out = d.Step(l.s, 2*time.Millisecond)
	if !out.Ready.LetGo {
		t.Fatal("the step did not let go of the returned partitions")
	}
	if !hasEvent[*events.PartitionsReleased](appended(out.Actions)) {
		t.Fatalf("let go, and no release in the same step: %+v", out.Actions)
	}
}

// An incarnation that was removed while nothing asked the process to end
// rejoins as a new one, declaring what the old one was last told; one that
// was removed while leaving does not.
func TestDriverRejoinPolicy(t *testing.T) {
	l := &logT{t: t, s: decider.New()}
	l.group([]string{"a", "b"}, []string{"p0", "p1", "p2", "p3"})
	d := NewDriver(Config{Nonce: "nb", Timings: liveness.Test(), Declare: true, Partitions: []string{"p0", "p1", "p2", "p3"}})
	out := driverUp(t, d, l.s, 0)
	if len(out.Ready.Calls) != 2 {
		t.Fatalf("b was assigned %v, want 2 partitions", callsString(out.Ready.Calls))
	}
	var want []string
	for _, c := range out.Ready.Calls {
		want = append(want, "-"+c.Owned.ID+"(stopped)")
	}
	d.Member().SetPartitions([]string{"q0", "q1"}, nil, "")
	l.apply(&events.MemberRemoved{Member: "b", Incarnation: 1, Reason: "expired", Judge: "a"})
	out = d.Step(l.s, time.Millisecond)
	r, rejoin := d.Stopped()
	if r != StopRemoved || !rejoin {
		t.Fatalf("removed: stopped %v, rejoin %v; want removed, rejoin", r, rejoin)
	}
	rd := out.Ready
	rd.Calls = append(rd.Calls, d.Rejoin("nb2").Calls...)
	if got := callsString(rd.Calls); !slices.Equal(got, want) {
		t.Fatalf("revocations around the rejoin: %v, want %v", got, want)
	}
	m := d.Member()
	if m == out.Member || m.Nonce() != "nb2" {
		t.Fatalf("no new incarnation (nonce %q)", m.Nonce())
	}
	if !slices.Equal(m.cfg.Partitions, []string{"q0", "q1"}) {
		t.Fatalf("the new incarnation declares %v, want what the old one was last told", m.cfg.Partitions)
	}
	if r, _ := d.Stopped(); r != NotStopped {
		t.Fatalf("the new incarnation is stopped: %v", r)
	}

	d2 := NewDriver(Config{Nonce: "na", Timings: liveness.Test()})
	driverUp(t, d2, l.s, 0)
	d2.Leave()
	l.apply(&events.MemberRemoved{Member: "a", Incarnation: 1, Reason: "expired", Judge: "b"})
	d2.Step(l.s, time.Millisecond)
	if r, rejoin := d2.Stopped(); r == NotStopped || rejoin {
		t.Fatalf("removed while leaving: stopped %v, rejoin %v; want stopped, no rejoin", r, rejoin)
	}
}

// A steady step of a member holding many partitions: nothing changed, so
// the contract has nothing to say and the leader nothing to declare.
func BenchmarkDriverSteadyStep(b *testing.B) {
	t := &testing.T{}
	parts := make([]string, 100_000)
	for i := range parts {
		parts[i] = "p-" + strconv.Itoa(i)
	}
	l := &logT{t: t, s: decider.New()}
	l.group([]string{"a"}, parts)
	d := NewDriver(Config{Nonce: "na", Timings: liveness.Test(), Declare: true, Partitions: parts})
	out := driverUp(t, d, l.s, 0)
	if len(out.Ready.Calls) != len(parts) {
		b.Fatalf("assigned %d, want %d", len(out.Ready.Calls), len(parts))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out = d.Step(l.s, time.Millisecond)
		if len(out.Ready.Calls) != 0 {
			b.Fatalf("a steady step made %d calls", len(out.Ready.Calls))
		}
	}
}

// A heartbeat action names the lease deadline its ack gives: the reading it
// was sent at plus the lease, which is what HeartbeatAcked then applies.
func TestHeartbeatNamesItsRenewal(t *testing.T) {
	l := &logT{t: t, s: decider.New()}
	l.group([]string{"a"}, []string{"p0"})
	d := NewDriver(Config{Nonce: "na", Timings: liveness.Test()})
	const at = 5 * time.Second
	out := d.Step(l.s, at)
	var hb *Action
	for i := range out.Actions {
		if out.Actions[i].Kind == ActHeartbeat {
			hb = &out.Actions[i]
		}
	}
	if hb == nil {
		t.Fatal("no heartbeat")
	}
	if want := at + liveness.Test().Lease; hb.Renews != want {
		t.Fatalf("renews to %v, want %v", hb.Renews, want)
	}
	out.Member.HeartbeatAcked(hb.ID, 1000, at+time.Millisecond)
	if got := out.Member.LeaseDeadline(); got != hb.Renews {
		t.Fatalf("the ack gave the member a lease until %v, the action said %v", got, hb.Renews)
	}
}
