package rawmember

import (
	"testing"
	"time"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/liveness"
)

type logT struct {
	t   *testing.T
	s   *decider.State
	seq uint64
}

func (l *logT) apply(ev events.Event) {
	l.t.Helper()
	l.seq++
	r := events.NewRecord(l.seq, time.Time{}, "parti.g.log", nil, events.MustEncode(1, ev))
	if out := decider.Apply(l.s, r); out.Kind != decider.Applied && out.Kind != decider.Partial {
		l.t.Fatalf("%T: %v %s", ev, out.Kind, out.Reason)
	}
}

func (l *logT) group(ids []string, parts []string) {
	l.t.Helper()
	for _, id := range ids {
		l.apply(&events.MemberClaimed{ID: id, Nonce: "n" + id, MaxProtocol: 1})
	}
	ds, err := decider.Declare(l.s, ids[0], 1, parts, nil, "", 0)
	if err != nil {
		l.t.Fatal(err)
	}
	for _, d := range ds {
		l.apply(d)
	}
	l.apply(&events.WindowClosed{By: ids[0]})
	d, _ := decider.Decide(l.s, ids[0], 1)
	for _, p := range decider.SplitDecision(d, DefaultMaxRangesPerPart) {
		l.apply(p)
	}
}

// A leaving member releases a partition only once the leader named its next
// owner, so the partition is never without one; the last member releases at
// once.
func TestLeavingMemberReleasesOnlyWhatHasATarget(t *testing.T) {
	l := &logT{t: t, s: decider.New()}
	l.group([]string{"a", "b"}, []string{"p0", "p1", "p2", "p3"})
	b := New(Config{Nonce: "nb", Timings: liveness.Test()})
	b.Start()
	b.Step(l.s, 0)
	if _, _, ok := b.Identity(); !ok {
		t.Fatal("b not granted")
	}
	b.Leave()
	l.apply(&events.MemberLeft{Member: "b", Incarnation: 1})
	b.Step(l.s, time.Second)
	if r := b.Revoking(); len(r) != 0 {
		t.Fatalf("b releases %v before the leader named a target", r)
	}
	d, _ := decider.Decide(l.s, "a", 1)
	if d == nil {
		t.Fatal("the leader did not move the leaver's partitions")
	}
	l.apply(d)
	b.Step(l.s, 2*time.Second)
	if r := b.Revoking(); len(r) != 2 {
		t.Fatalf("b hands off %v, want its 2 partitions", r)
	}

	l2 := &logT{t: t, s: decider.New()}
	l2.group([]string{"a"}, []string{"p0", "p1"})
	a := New(Config{Nonce: "na", Timings: liveness.Test()})
	a.Start()
	a.Step(l2.s, 0)
	a.Leave()
	l2.apply(&events.MemberLeft{Member: "a", Incarnation: 1})
	a.Step(l2.s, time.Second)
	if r := a.Revoking(); len(r) != 2 {
		t.Fatalf("the last member hands off %v, want both partitions at once", r)
	}
}

// The removal that follows a verdict names the verdict's judge and span.
func TestRemovalCarriesTheVerdictsJudgeAndSpan(t *testing.T) {
	m := New(Config{Nonce: "nx", Timings: liveness.Test()})
	m.granted, m.id, m.inc = true, "a", 1
	v := &events.ExpiryVerdict{Member: "b", Incarnation: 3, Judge: "c", JudgeInc: 2, SpanMillis: 3100}
	m.appendRemoval(key("b", 3), 42, v, true)
	acts := m.Actions()
	if len(acts) != 1 || len(acts[0].Events) != 1 {
		t.Fatalf("actions %+v", acts)
	}
	r, ok := acts[0].Events[0].(*events.MemberRemoved)
	if !ok || r.Judge != "c" || r.SpanMillis != 3100 || r.VerdictSeq != 42 || r.Member != "b" || r.Incarnation != 3 {
		t.Fatalf("removal %+v", acts[0].Events[0])
	}
}
