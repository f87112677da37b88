package decider

import (
	"fmt"
	"slices"
	"testing"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/strategy"
)

// joinLabelled claims id with labels and capacity.
func (f *folder) joinLabelled(id string, capacity uint32, labels ...string) *Member {
	f.t.Helper()
	nonce := "n-" + id + fmt.Sprint(f.seq)
	c, err := Claim(id, nonce, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	c.Labels, c.Capacity = labels, capacity
	f.mustApply(c)
	m := f.s.GrantedTo(nonce)
	if m == nil {
		f.t.Fatalf("claim %s not granted", id)
	}
	return m
}

// declarePlaced declares n partitions with classes; classOf(i) picks each
// partition's class.
func (f *folder) declarePlaced(n int, classes []events.Class, classOf func(i int) uint32, maxPerPart int) []string {
	f.t.Helper()
	ids := make([]string, n)
	co := make([]uint32, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("p-%04d", i)
		co[i] = classOf(i)
	}
	l := f.leader()
	ds, err := DeclarePlaced(f.s, l.ID, l.Incarnation, ids, nil, classes, co, strategy.NamePlacement, maxPerPart)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, d := range ds {
		f.apply(d)
	}
	return ids
}

// TestPlacementThroughTheFold: labels and capacity travel in claims, classes
// in a multi-part declaration; the placement strategy keeps EU partitions on
// EU members, gives the capacity-2 member twice the share of the rest, and
// leaves the partitions no member may own unowned, listed by Unplaceable.
func TestPlacementThroughTheFold(t *testing.T) {
	f := newFolder(t)
	f.joinLabelled("a1", 1, "region=eu", "zone=a")
	f.joinLabelled("b1", 1, "region=eu", "zone=b")
	f.joinLabelled("c1", 2, "region=us", "zone=c")
	classes := []events.Class{{}, {Require: []string{"region=eu"}}, {Require: []string{"region=ap"}}}
	f.declarePlaced(400, classes, func(i int) uint32 {
		switch {
		case i%4 == 1:
			return 1
		case i == 7:
			return 2
		}
		return 0
	}, 150)
	if f.s.DeclVersion != 1 || len(f.s.ClassOf) != 400 || len(f.s.Classes) != 3 {
		t.Fatalf("declaration not folded: version %d, %d class indices, %d classes", f.s.DeclVersion, len(f.s.ClassOf), len(f.s.Classes))
	}
	if m := f.s.Members["c1"]; m.Capacity != 2 || !slices.Equal(m.Labels, []string{"region=us", "zone=c"}) {
		t.Fatalf("c1 = %+v, want labels and capacity 2", m)
	}
	f.closeWindow()
	f.settle()
	load := map[string]int{}
	for i, o := range f.s.Owners {
		switch f.s.ClassOf[i] {
		case 1:
			if o.Owner == "c1" || o.Owner == "" {
				t.Fatalf("EU partition %s owned by %q", f.s.Partitions[i], o.Owner)
			}
		case 2:
			if o.Owner != "" {
				t.Fatalf("unplaceable partition %s owned by %q", f.s.Partitions[i], o.Owner)
			}
		default:
			load[o.Owner]++
		}
	}
	// 299 unconstrained partitions, capacities 1:1:2.
	if load["c1"] < 2*load["a1"]-20 || load["c1"] < 2*load["b1"]-20 {
		t.Errorf("unconstrained loads %v, want c1 about twice a1 and b1", load)
	}
	if got := f.s.Unplaceable(); !slices.Equal(got, []string{"p-0007"}) {
		t.Errorf("Unplaceable = %v, want [p-0007]", got)
	}
	// An AP member joins: the unplaceable partition is placed on it.
	f.joinLabelled("d1", 1, "region=ap")
	f.settle()
	if o := f.s.Owners[7]; o.Owner != "d1" {
		t.Errorf("p-0007 owned by %q, want d1", o.Owner)
	}
	if got := f.s.Unplaceable(); got != nil {
		t.Errorf("Unplaceable = %v, want none", got)
	}
	// Clone and snapshot keep the placement fields.
	c := f.s.Clone()
	if !slices.Equal(c.ClassOf, f.s.ClassOf) || len(c.Classes) != 3 {
		t.Errorf("Clone lost the classes")
	}
}

// TestPlacementBadInputIsDropped: a claim with malformed labels or an
// oversized capacity is granted without them, and a declaration whose
// classes are malformed applies with every partition unconstrained: a build
// that predates the fields folds both the same way. The commands refuse
// them with an error.
func TestPlacementBadInputIsDropped(t *testing.T) {
	f := newFolder(t)
	f.join("a")
	for i, c := range []*events.MemberClaimed{
		{Nonce: "nb", Labels: []string{"zone"}},
		{Nonce: "nb2", Labels: []string{"zone=b", "region=eu"}}, // unsorted
		{Nonce: "nb3", Capacity: events.MaxCapacity + 1},
	} {
		c.ID = fmt.Sprintf("b%d", i)
		f.mustApply(c)
		if m := f.s.GrantedTo(c.Nonce); m == nil || m.Labels != nil || m.Capacity != 0 {
			t.Errorf("claim %+v: granted %+v, want granted without labels or capacity", c, m)
		}
	}
	bad := &events.PartitionsDeclared{Version: 1, IDs: []string{"p1", "p2"}, By: "a",
		Classes: []events.Class{{Require: []string{"region=eu"}}}, ClassOf: []uint32{0, 1}}
	f.mustApply(bad)
	if f.s.DeclVersion != 1 || f.s.ClassOf != nil || f.s.Classes != nil {
		t.Errorf("declaration with a class index out of range: version %d, classes %v %v", f.s.DeclVersion, f.s.Classes, f.s.ClassOf)
	}
	_, err := DeclarePlaced(f.s, "a", 1, []string{"p1"}, nil, []events.Class{{Prefer: []string{"x"}}}, []uint32{0}, "", 0)
	wantErr(t, err, ErrInvalidPartition)
	wantErr(t, err, events.ErrInvalidLabel)
}

// TestPlacementDeclarationFitsBatchLimits: 100,000 partitions, each with a
// class, split by the default part size, keep every part under 1 MiB (the
// server's default maximum payload).
func TestPlacementDeclarationFitsBatchLimits(t *testing.T) {
	f := newFolder(t)
	f.join("a")
	ids := make([]string, 100_000)
	classOf := make([]uint32, len(ids))
	for i := range ids {
		ids[i] = fmt.Sprintf("tenant-%06d", i)
		classOf[i] = uint32(i % 40)
	}
	classes := make([]events.Class, 40)
	for c := range classes {
		classes[c] = events.Class{Require: []string{fmt.Sprintf("region=r%02d", c%4)}, Prefer: []string{fmt.Sprintf("zone=z%02d", c)}}
	}
	ds, err := DeclarePlaced(f.s, "a", 1, ids, nil, classes, classOf, strategy.NamePlacement, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if n := len(events.MustEncode(events.MaxVersion, d)); n > 1<<20 {
			t.Errorf("part %d of %d is %d bytes, over 1 MiB", d.Part, d.Parts, n)
		}
		f.apply(d)
	}
	if len(f.s.ClassOf) != len(ids) || f.s.ClassOf[99_999] != 99_999%40 {
		t.Fatalf("declaration not folded whole: %d class indices", len(f.s.ClassOf))
	}
}

// TestPlacementRestartInsideGraceMovesNothing: under "placement", a member
// closing for a restart keeps its partitions and still counts in the
// shares (a frozen member), so neither the close nor the restart that
// follows moves anything, for any member closing.
func TestPlacementRestartInsideGraceMovesNothing(t *testing.T) {
	ids := []string{"a1", "a2", "b1", "b2", "c1", "c2"}
	for _, closer := range ids {
		f := newFolder(t)
		for k, id := range ids {
			f.joinLabelled(id, uint32(1+k%3), "zone="+id[:1])
		}
		classes := []events.Class{{}, {Prefer: []string{"zone=a"}}, {Require: []string{"zone=c"}}, {Prefer: []string{"zone=b"}}}
		f.declarePlaced(97, classes, func(i int) uint32 { return uint32(i % 4) }, 0)
		f.closeWindow()
		f.settle()
		m := f.s.Members[closer]
		c, err := CloseForRestart(f.s, m.ID, m.Incarnation)
		if err != nil {
			t.Fatal(err)
		}
		f.mustApply(c)
		if n := f.decide(); n != 0 {
			t.Errorf("%s closing: a decision moved %d partitions", closer, n)
		}
		f.joinLabelled(closer, m.Capacity, m.Labels...)
		if n := f.decide(); n != 0 {
			t.Errorf("%s restarted inside its grace: a decision moved %d partitions", closer, n)
		}
	}
}
