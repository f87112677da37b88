package test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/strategy"
)

// zoneMember describes one member of the 3 × 3 placement fleet.
type zoneMember struct {
	id       string
	zone     string
	region   string
	capacity uint32
}

func zoneMembers() []zoneMember {
	var out []zoneMember
	for _, z := range []string{"a", "b", "c"} {
		region := "eu"
		if z == "c" {
			region = "us"
		}
		for k, c := range []uint32{1, 2, 3} {
			out = append(out, zoneMember{id: fmt.Sprintf("%s%d", z, k+1), zone: z, region: region, capacity: c})
		}
	}
	return out
}

// joinZoned joins zm with its labels and capacity.
func (f *fleet) joinZoned(ctx context.Context, zm zoneMember) {
	f.t.Helper()
	f.base.Labels = map[string]string{"zone": zm.zone, "region": zm.region}
	f.base.Capacity = zm.capacity
	f.join(ctx, zm.id)
	f.base.Labels, f.base.Capacity = nil, 0
}

// checkPlacement checks, in the first member's fold, that every partition is
// owned by a member with its required labels (none unplaceable here) and
// returns max/mean load per capacity unit over the members.
func checkPlacement(t *testing.T, s *decider.State) float64 {
	t.Helper()
	load := map[string]float64{}
	for i, o := range s.Owners {
		m := s.Members[o.Owner]
		if m == nil {
			t.Fatalf("%s owned by %q, not a member", s.Partitions[i], o.Owner)
		}
		for _, l := range s.Class(i).Require {
			if !slices.Contains(m.Labels, l) {
				t.Fatalf("%s requires %q, owned by %s with labels %q", s.Partitions[i], l, m.ID, m.Labels)
			}
		}
		load[o.Owner]++
	}
	var total, capTotal, worst float64
	for _, m := range s.LiveMembers() {
		c := float64(m.CapacityOrOne())
		total += load[m.ID]
		capTotal += c
		worst = max(worst, load[m.ID]/c)
	}
	return worst / (total / capTotal)
}

// TestPlacementZoneLoss: 9 members in 3 zones (capacities 1, 2 and 3 in
// each) share 600 partitions under the placement strategy, a fifth
// preferring zone a and a fifth restricted to region=eu (zones a and b).
// Zone c is lost (its members crash): exactly the partitions it held move,
// within 1.05 × that minimum, and the load per capacity unit stays within
// 1.25 × the mean. Zone c comes back: constraints hold and the load is
// spread again.
func TestPlacementZoneLoss(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	f := newFleet(t, js, "zones", 600)
	f.base.Strategy = strategy.NamePlacement
	f.base.Constraints = make([]parti.Constraint, len(f.parts))
	for i := range f.parts {
		switch i % 5 {
		case 1:
			f.base.Constraints[i] = parti.Constraint{Prefer: map[string]string{"zone": "a"}}
		case 2:
			f.base.Constraints[i] = parti.Constraint{Require: map[string]string{"region": "eu"}}
		}
	}
	f.base.ExpectedMembers = 9
	for _, zm := range zoneMembers() {
		f.joinZoned(ctx, zm)
	}
	f.waitSettled(60 * time.Second)
	f.base.ExpectedMembers = 0
	st := f.all()[0].State()
	if st.Strategy != strategy.NamePlacement || len(st.ClassOf) != 600 {
		t.Fatalf("declared strategy %q with %d class indices", st.Strategy, len(st.ClassOf))
	}
	b := checkPlacement(t, st)
	t.Logf("9 members settled: max/mean load per capacity unit %.3f", b)
	if b > 1.25 {
		t.Errorf("max/mean load per capacity unit %.3f > 1.25 before the loss", b)
	}

	before := f.owners()
	held := 0
	for _, o := range before {
		if o[0] == 'c' {
			held++
		}
	}
	start := time.Now()
	for _, zm := range zoneMembers() {
		if zm.zone == "c" {
			f.member(zm.id).Stop() // the zone is lost: no leave
			f.drop(zm.id)
		}
	}
	f.waitSettled(f.base.Timings.Expiry + 45*time.Second)
	after := f.owners()
	got := moved(before, after)
	st = f.all()[0].State()
	b = checkPlacement(t, st)
	t.Logf("zone c lost: moved %d, zone c held %d (ratio %.3f), max/mean per capacity %.3f, in %v",
		got, held, float64(got)/float64(held), b, time.Since(start))
	if float64(got) > 1.05*float64(held) {
		t.Errorf("zone loss moved %d partitions, more than 1.05 × the %d zone c held", got, held)
	}
	if b > 1.25 {
		t.Errorf("after the zone loss, max/mean load per capacity unit %.3f > 1.25", b)
	}

	// Zone c comes back.
	before = after
	for _, zm := range zoneMembers() {
		if zm.zone == "c" {
			f.joinZoned(ctx, zm)
		}
	}
	f.waitSettled(60 * time.Second)
	st = f.all()[0].State()
	b = checkPlacement(t, st)
	back := 0
	for p, o := range f.owners() {
		if o[0] == 'c' && before[p] != o {
			back++
		}
	}
	t.Logf("zone c back: moved %d, %d of them to zone c, max/mean per capacity %.3f", moved(before, f.owners()), back, b)
	if back == 0 || b > 1.25 {
		t.Errorf("zone c back: %d partitions moved to it, max/mean per capacity %.3f", back, b)
	}

	// New constraints at run time: every partition must now stay in the
	// EU, so zone c (region=us) gives up everything it owns.
	eu := make([]parti.Constraint, len(f.parts))
	for i := range eu {
		eu[i] = parti.Constraint{Require: map[string]string{"region": "eu"}}
	}
	version := st.DeclVersion
	for _, m := range f.all() {
		if err := m.SetPlacedPartitions(f.parts, nil, eu); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 60*time.Second, "the EU-only declaration to settle", func() bool {
		return f.all()[0].State().DeclVersion > version && f.settled()
	})
	checkPlacement(t, f.all()[0].State())
	for p, o := range f.owners() {
		if o[0] == 'c' {
			t.Fatalf("%s still owned by %s in zone c after the EU-only declaration", p, o)
		}
	}
	f.checkNoOverlap()
}
