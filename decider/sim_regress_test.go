package decider

import (
	"fmt"
	"testing"

	"github.com/parti-io/parti/events"
)

// Regression tests for bugs the simulator (test/sim) found.

// A member that crashed halfway through its leave must still be judged:
// before, the ring held only live members, so a leaving member was judged by
// nobody, never removed, and the partitions it had not released (and its ID)
// stayed stuck forever.
func TestVictimRingKeepsLeavingMembers(t *testing.T) {
	f := newFolder(t)
	for _, id := range []string{"a", "b", "c"} {
		f.join(id)
	}
	f.declare(12)
	f.closeWindow()
	f.decide()
	f.mustApply(&events.MemberLeft{Member: "b", Incarnation: 1})
	if m := f.s.Members["b"]; m == nil || !m.Leaving {
		t.Fatalf("b must still be a leaving member (it owns partitions): %+v", m)
	}
	for judge, want := range map[string]string{"a": "c", "b": "a", "c": "b"} {
		v, ok := f.s.Victim(judge, 1)
		if !ok || v.ID != want {
			t.Fatalf("%s judges %v (ok %v), want %s", judge, v, ok, want)
		}
	}
	// A closing member stays out of the ring.
	f.mustApply(&events.MemberClosing{Member: "c", Incarnation: 1})
	if v, ok := f.s.Victim("a", 1); !ok || v.ID != "b" {
		t.Fatalf("a judges %v, want the leaving b (closing c skipped)", v)
	}
}

func ids(n int, skip ...int) []string {
	var out []string
	for i := 0; i < n; i++ {
		dropped := false
		for _, k := range skip {
			dropped = dropped || k == i
		}
		if !dropped {
			out = append(out, fmt.Sprintf("p-%04d", i))
		}
	}
	return out
}

func (f *folder) redeclare(idsIn []string) {
	f.t.Helper()
	l := f.leader()
	ds, err := Declare(f.s, l.ID, l.Incarnation, idsIn, nil, "", 0)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, d := range ds {
		f.mustApply(d)
	}
}

// A partition dropped by a re-declaration and declared again must go back to
// the owner it was dropped from: that owner never released it and may not
// have folded the drop yet (its fold lags, or it paused just before), so
// handing it to someone else at once gave it two owners. The simulator found
// it with a set changed and changed back one second later.
func TestReDeclaredPartitionGoesBackToItsOwner(t *testing.T) {
	f := newFolder(t)
	f.join("a")
	f.join("b")
	f.declare(12)
	f.closeWindow()
	f.settle()
	i, _ := f.s.PartitionIndex("p-0005")
	was := f.s.Owners[i]
	if was.Owner == "" {
		t.Fatal("p-0005 unowned after settling")
	}

	f.redeclare(ids(12, 5))
	if _, ok := f.s.PartitionIndex("p-0005"); ok {
		t.Fatal("p-0005 still declared")
	}
	if got := f.s.Retired["p-0005"]; got != (Ownership{Owner: was.Owner, Inc: was.Inc, Token: was.Token}) {
		t.Fatalf("retired p-0005 = %+v, want the ownership %+v", got, was)
	}
	f.settle()

	f.redeclare(ids(12))
	i, _ = f.s.PartitionIndex("p-0005")
	// Same owner; a new token, as the partition has a new index.
	if got := f.s.Owners[i]; got.Owner != was.Owner || got.Inc != was.Inc || got.Token != f.s.LastSeq {
		t.Fatalf("re-declared p-0005 owned by %+v, want %s/%d with the declaration's token %d", got, was.Owner, was.Inc, f.s.LastSeq)
	}
	if len(f.s.Retired) != 0 {
		t.Fatalf("retired after the re-declaration: %v", f.s.Retired)
	}
	// A decision may still move it, but only as a move from its owner.
	l := f.leader()
	if d, err := Decide(f.s, l.ID, l.Incarnation); err != nil {
		t.Fatal(err)
	} else if d != nil {
		for _, mv := range d.Moves {
			mv.Parts.Each(func(p uint32) bool {
				if p == i && mv.From != was.Owner {
					t.Fatalf("p-0005 moved from %q, want from its owner %s", mv.From, was.Owner)
				}
				return true
			})
		}
	}
}

// A retired ownership whose owner is gone is not restored.
func TestReDeclaredPartitionOfARemovedOwnerIsUnowned(t *testing.T) {
	f := newFolder(t)
	f.join("a")
	f.join("b")
	f.declare(12)
	f.closeWindow()
	f.settle()
	i, _ := f.s.PartitionIndex("p-0005")
	owner := f.s.Owners[i]
	f.redeclare(ids(12, 5))
	f.mustApply(&events.MemberRemoved{Member: owner.Owner, Incarnation: owner.Inc, Reason: events.ReasonExpired})
	f.redeclare(ids(12))
	i, _ = f.s.PartitionIndex("p-0005")
	if got := f.s.Owners[i]; got.Owner != "" {
		t.Fatalf("p-0005 given back to %+v, whose owner was removed", got)
	}
	if len(f.s.Retired) != 0 {
		t.Fatalf("retired entries of a removed owner kept: %v", f.s.Retired)
	}
}

// Retired ownerships survive a snapshot and a clone.
func TestRetiredSurvivesSnapshotAndClone(t *testing.T) {
	f := newFolder(t)
	f.join("a")
	f.declare(4)
	f.closeWindow()
	f.settle()
	f.redeclare(ids(4, 1, 2))
	if len(f.s.Retired) != 2 {
		t.Fatalf("retired = %v, want 2 entries", f.s.Retired)
	}
	data, h, err := Snapshot(f.s)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Restore(data, h)
	if err != nil {
		t.Fatal(err)
	}
	if _, h2, _ := Snapshot(r); h2 != h {
		t.Fatal("restored state differs")
	}
	c := f.s.Clone()
	delete(c.Retired, "p-0001")
	if len(f.s.Retired) != 2 {
		t.Fatal("Clone shares Retired")
	}
}

// Releases are unfenced and name partitions by index and token. One computed
// before a re-declaration and folded after it must not release the partition
// of the same owner, with the same token, that now sits at that index: the
// simulator found the leader handing such a partition to another member while
// its owner still worked on it.
func TestReleaseFromAnOldLayoutMatchesNothing(t *testing.T) {
	f := newFolder(t)
	f.join("a")
	f.declare(8)
	f.closeWindow()
	f.decide() // a owns all 8, one token
	f.join("b")
	f.closeWindow()
	f.decide() // moves some to b
	var moving, staying uint32 = 99, 99
	for i, o := range f.s.Owners {
		switch {
		case o.Owner == "a" && o.Target != "" && moving == 99:
			moving = uint32(i)
		case o.Owner == "a" && o.Target == "" && staying == 99 && moving != 99:
			staying = uint32(i)
		}
	}
	if moving == 99 || staying == 99 || f.s.Owners[moving].Token != f.s.Owners[staying].Token {
		t.Fatalf("want a moving and a later staying partition of a with one token: %+v", f.s.Owners)
	}
	stayingID := f.s.Partitions[staying]
	rel := &events.PartitionsReleased{Member: "a", Incarnation: 1,
		Released: []events.Released{{Partition: moving, Token: f.s.Owners[moving].Token}}}
	// A re-declaration drops everything between, so the staying partition
	// takes the moving one's index.
	var next []string
	for i, id := range f.s.Partitions {
		if i <= int(moving) || i >= int(staying) {
			next = append(next, id)
		}
	}
	next = append(next[:moving], next[moving+1:]...) // drop the moving one too
	f.redeclare(next)
	j, _ := f.s.PartitionIndex(stayingID)
	if j != moving {
		t.Fatalf("setup: %s at %d, want %d", stayingID, j, moving)
	}
	f.apply(rel)
	if o := f.s.Owners[j]; o.Owner != "a" {
		t.Fatalf("a release of the old layout released %s: %+v", stayingID, o)
	}
}
