package decider

import (
	"testing"

	"github.com/parti-io/parti/events"
)

// Issue 12, item 3: a force-expire names the incarnation and removes nothing
// by itself: the incarnation keeps its partitions (it may still be acting on
// them) until a removal is folded, gets nothing new, and a force-expire of
// another incarnation of the same ID (a newer one than the operator meant)
// is ignored.
func TestForceExpireMarksTheNamedIncarnationOnly(t *testing.T) {
	f := newFolder(t)
	for _, id := range []string{"a", "b", "c"} {
		f.join(id)
	}
	f.declare(9)
	f.closeWindow()
	f.settle()
	owned := len(f.s.Owned("c", 1))
	if owned == 0 {
		t.Fatal("c owns nothing")
	}
	if out := f.apply(&events.OperatorAction{Action: events.OpForceExpire, Member: "c", Incarnation: 7}); out.Kind != Ignored {
		t.Fatalf("force-expire of c/7: %v, want ignored", out)
	}
	f.mustApply(&events.OperatorAction{Action: events.OpForceExpire, Member: "c", Incarnation: 1})
	f.decide()
	if n := len(f.s.Owned("c", 1)); n != owned {
		t.Fatalf("forced c owns %d after a decision, want its %d until a removal or its releases", n, owned)
	}
	for i, o := range f.s.Owners {
		if o.Target == "c" {
			t.Fatalf("partition %d moves to forced c", i)
		}
	}
	f.mustApply(&events.MemberRemoved{Member: "c", Incarnation: 1, Reason: events.ReasonForced, VerdictSeq: 99})
	f.settle()
	if f.s.Members["c"] != nil || len(f.s.Owned("c", 1)) != 0 || f.s.Unowned() != 0 {
		t.Fatalf("after the removal: c %v, unowned %d", f.s.Members["c"], f.s.Unowned())
	}
}

// Issue 12, item 7: the claim of a dead incarnation (its old nonce),
// published again, used to be accepted as a waiting claim and granted later,
// a ghost given the orphaned partitions. A nonce once granted is never
// granted again.
func TestClaimWithASpentNonceIsNeverGranted(t *testing.T) {
	f := newFolder(t)
	f.join("a")
	b := f.join("b")
	old := b.Nonce
	f.mustApply(&events.MemberRemoved{Member: "b", Incarnation: b.Incarnation, Reason: events.ReasonExpired, VerdictSeq: 1})
	if out := f.apply(&events.MemberClaimed{ID: "b", Nonce: old, MaxProtocol: events.MaxVersion}); out.Kind != Ignored {
		t.Fatalf("replayed claim of the removed b: %v, want ignored", out)
	}
	if f.s.Members["b"] != nil || len(f.s.Pending) != 0 {
		t.Fatalf("a ghost of b: member %+v, pending %v", f.s.Members["b"], f.s.Pending)
	}
	// The same while a new incarnation holds the ID: the replay must not
	// wait for it to go.
	nb := f.join("b")
	if out := f.apply(&events.MemberClaimed{ID: "b", Nonce: old, MaxProtocol: events.MaxVersion}); out.Kind != Ignored || len(f.s.Pending) != 0 {
		t.Fatalf("replayed claim while b/%d lives: %v, pending %v", nb.Incarnation, out, f.s.Pending)
	}
}

// Issue 12, smaller items: the first part of a multi-part declaration, alone
// on the log, used to make Decide return ErrBusy until some other record
// arrived: a group with nothing else to append stalled. A lone part from
// someone who is not the leader starts nothing; one that looks like the
// leader's does not stop the leader deciding, and the decision drops it.
func TestLoneDeclarationPartDoesNotStallTheLeader(t *testing.T) {
	f := newFolder(t)
	for _, id := range []string{"a", "b"} {
		f.join(id)
	}
	f.declare(8)
	f.closeWindow()
	f.settle()
	lone := func(by string) *events.PartitionsDeclared {
		return &events.PartitionsDeclared{Version: f.s.DeclVersion + 1, IDs: []string{"x-1"}, By: by, Part: 0, Parts: 2}
	}
	if out := f.apply(lone("b")); out.Kind != Ignored {
		t.Fatalf("lone part by a non-leader: %v, want ignored", out)
	}
	f.mustApply(&events.OperatorAction{Action: events.OpDrain, Member: "b"})
	l := f.leader()
	if out := f.apply(lone(l.ID)); out.Kind != Partial {
		t.Fatalf("lone part by the leader: %v, want partial", out)
	}
	d, err := Decide(f.s, l.ID, l.Incarnation)
	if err != nil || d == nil {
		t.Fatalf("Decide after a lone part: %v, %v; want a decision", d, err)
	}
	f.mustApply(d)
	if f.s.InFlight() == 0 {
		t.Fatal("the decision moved nothing off the drained member")
	}
}
