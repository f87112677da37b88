package strategy

import (
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// placementCase returns a random valid placement input: members with zone
// and region labels and capacities, constraint classes (some unplaceable,
// some with affinity), weights, and an arbitrary Previous.
func placementCase(rng *rand.Rand) Input {
	pool := ids("m", 2+rng.IntN(12))
	n := rng.IntN(len(pool) + 1)
	in := Input{
		Members:    sortedSample(rng, pool, n),
		Partitions: ids("p", rng.IntN(150)),
	}
	zones := []string{"zone=a", "zone=b", "zone=c"}
	regions := []string{"region=eu", "region=us"}
	if rng.IntN(6) != 0 {
		in.Labels = make([][]string, n)
		for m := range in.Labels {
			in.Labels[m] = []string{zones[rng.IntN(len(zones))], regions[rng.IntN(len(regions))]}
		}
	}
	if rng.IntN(2) == 0 {
		in.Capacities = make([]uint32, n)
		for m := range in.Capacities {
			in.Capacities[m] = 1 + rng.Uint32N(4)
		}
	}
	if rng.IntN(2) == 0 {
		in.Weights = randomWeights(rng, len(in.Partitions), 1+rng.Uint32N(10))
	}
	if rng.IntN(5) != 0 {
		requires := [][]string{nil, nil, {"region=eu"}, {"region=us"}, {"region=ap"}, {"zone=a", "region=eu"}}
		prefers := [][]string{nil, nil, {"zone=a"}, {"zone=b"}, {"zone=c", "region=us"}}
		in.Classes = make([]Class, 1+rng.IntN(4))
		for c := range in.Classes {
			in.Classes[c] = Class{Require: requires[rng.IntN(len(requires))], Prefer: prefers[rng.IntN(len(prefers))]}
		}
		in.ClassOf = make([]uint32, len(in.Partitions))
		for i := range in.ClassOf {
			in.ClassOf[i] = rng.Uint32N(uint32(len(in.Classes)))
		}
	}
	if rng.IntN(5) != 0 {
		in.Previous = make([]string, len(in.Partitions))
		for i := range in.Previous {
			if k := rng.IntN(len(pool) + 1); k < len(pool) {
				in.Previous[i] = pool[k]
			}
		}
	}
	return in
}

// refPlacementBounds computes, with math/big and independently of placer, the
// bounds of member m in class c of in: upper, lower and whether m is
// preferred, plus whether the class has affinity at all.
func refPlacementBounds(in Input, c int, eps float64) (upper, lower []uint64, pref []bool, affinity bool) {
	n := len(in.Members)
	upper, lower, pref = make([]uint64, n), make([]uint64, n), make([]bool, n)
	cl := Class{}
	if c >= 0 {
		cl = in.Classes[c]
	}
	labels := func(m int) []string {
		if in.Labels == nil {
			return nil
		}
		return in.Labels[m]
	}
	has := func(m int, want []string) bool {
		for _, w := range want {
			if !slices.Contains(labels(m), w) {
				return false
			}
		}
		return true
	}
	capOf := func(m int) int64 {
		if in.Capacities == nil {
			return 1
		}
		return int64(in.Capacities[m])
	}
	var total, wmax, capTotal int64
	for i := range in.Partitions {
		if (in.ClassOf == nil && c < 0) || (in.ClassOf != nil && int(in.ClassOf[i]) == c) {
			w := int64(weightOf(in.Weights, i))
			total += w
			wmax = max(wmax, w)
		}
	}
	var elig []int
	for m := range in.Members {
		if has(m, cl.Require) {
			elig = append(elig, m)
			capTotal += capOf(m)
			if len(cl.Prefer) > 0 && has(m, cl.Prefer) {
				pref[m], affinity = true, true
			}
		}
	}
	if eps == 0 {
		eps = DefaultPlacementEpsilon
	}
	ppm := new(big.Rat).SetFrac64(int64(eps*1e6+0.5), 1e6)
	one := big.NewRat(1, 1)
	ceil := func(r *big.Rat) uint64 {
		q, rem := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
		if rem.Sign() > 0 {
			q.Add(q, big.NewInt(1))
		}
		return q.Uint64()
	}
	floor := func(r *big.Rat) uint64 { return new(big.Int).Quo(r.Num(), r.Denom()).Uint64() }
	for _, m := range elig {
		share := big.NewRat(total*capOf(m), capTotal)
		up := ceil(new(big.Rat).Mul(share, new(big.Rat).Add(one, ppm)))
		upper[m] = max(up, ceil(share)+uint64(wmax)-1)
		if !affinity || pref[m] {
			lo := new(big.Rat).Mul(share, new(big.Rat).Sub(one, ppm))
			if lo.Sign() > 0 {
				lower[m] = floor(lo)
			}
		}
	}
	return upper, lower, pref, affinity
}

// classLoads returns each member's load in class c under out.
func classLoads(in Input, out []int32, c int) []uint64 {
	load := make([]uint64, len(in.Members))
	for i, o := range out {
		if o >= 0 && in.classOf(i) == c {
			load[o] += weightOf(in.Weights, i)
		}
	}
	return load
}

// classesOf returns the class indices in use (-1 when ClassOf is nil).
func classesOf(in Input) []int {
	if in.ClassOf == nil {
		return []int{-1}
	}
	out := make([]int, len(in.Classes))
	for c := range out {
		out[c] = c
	}
	return out
}

// affinityReturns counts the weight of partitions whose previous owner is
// still eligible but not preferred and whose new owner is preferred.
func affinityReturns(in Input, out []int32) uint64 {
	if in.Previous == nil {
		return 0
	}
	idx := memberIndex(in.Members)
	var w uint64
	for i, id := range in.Previous {
		o, ok := idx[id]
		if !ok || out[i] < 0 || out[i] == o {
			continue
		}
		c := in.classOf(i)
		if !in.Preferred(c, int(out[i])) || in.Preferred(c, int(o)) || !hasAll(labelsOf(in, o), in.class(c).Require) {
			continue
		}
		w += weightOf(in.Weights, i)
	}
	return w
}

// TestPlacementProperties holds Placement to its bound table on random
// inputs: constraints, the per-class balance bounds, affinity, movement
// against PlacementMinimum, determinism and not touching its input.
func TestPlacementProperties(t *testing.T) {
	epsilons := []float64{0, 0.05, 0.25, 1}
	var exact, total int
	for c := range propertyCases {
		rng, seed := newRNG(t, c)
		in := placementCase(rng)
		eps := epsilons[rng.IntN(len(epsilons))]
		s := Placement{Epsilon: eps}
		before := clonePlacementInput(in)
		out, err := s.Assign(in)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if diff := cmp.Diff(before, in); diff != "" {
			t.Fatalf("seed %d: Assign modified its input:\n%s", seed, diff)
		}
		again, _ := s.Assign(clonePlacementInput(in))
		if !slices.Equal(out, again) {
			t.Fatalf("seed %d: two runs differ", seed)
		}
		unplaceable := Unplaceable(in)
		eligOf := map[int][]int32{} // by class
		for _, cl := range classesOf(in) {
			eligOf[cl] = in.Eligible(cl)
		}
		for i, o := range out {
			cl := in.classOf(i)
			elig := eligOf[cl]
			switch {
			case len(elig) == 0 || len(in.Members) == 0:
				if o != -1 {
					t.Fatalf("seed %d: partition %d of class %d with no eligible member owned by %d", seed, i, cl, o)
				}
				if _, ok := slices.BinarySearch(unplaceable, i); !ok {
					t.Fatalf("seed %d: partition %d unplaceable but not in Unplaceable", seed, i)
				}
			case o < 0 || !slices.Contains(elig, o):
				t.Fatalf("seed %d: partition %d of class %d (%v) owned by %d, eligible %v", seed, i, cl, in.class(cl), o, elig)
			}
		}
		if len(in.Members) == 0 {
			continue
		}
		unit := in.Weights == nil
		for _, cl := range classesOf(in) {
			upper, lower, pref, affinity := refPlacementBounds(in, cl, eps)
			load := classLoads(in, out, cl)
			for _, m := range eligOf[cl] {
				if load[m] > upper[m] {
					t.Fatalf("seed %d: class %d member %d load %d > upper %d", seed, cl, m, load[m], upper[m])
				}
				if unit && load[m] < lower[m] {
					t.Fatalf("seed %d: class %d member %d load %d < lower %d (unit weights)", seed, cl, m, load[m], lower[m])
				}
			}
			if !affinity || !unit {
				continue
			}
			// Affinity: a partition off the preferred set means no preferred
			// member has room for it.
			for i, o := range out {
				if o < 0 || in.classOf(i) != cl || pref[o] {
					continue
				}
				for m := range in.Members {
					if pref[m] && load[m]+1 <= upper[m] {
						t.Fatalf("seed %d: class %d partition %d on non-preferred %d while preferred %d has room (%d/%d)", seed, cl, i, o, m, load[m], upper[m])
					}
				}
			}
		}
		if unit {
			moved := MovedWeight(in.Previous, out, in.Members, nil)
			returned := affinityReturns(in, out)
			minimum := PlacementMinimum(in, eps)
			total++
			if moved-returned == minimum {
				exact++
			}
			if moved-returned > minimum {
				t.Errorf("seed %d: moved %d − returned %d > minimum %d", seed, moved, returned, minimum)
			}
		} else if in.Previous != nil {
			moved := MovedWeight(in.Previous, out, in.Members, in.Weights)
			returned := affinityReturns(in, out)
			minimum := PlacementMinimum(in, eps)
			_, wmax, _ := weightStats(in.Weights, len(in.Weights))
			if bound := max(minimum+minimum/4, minimum+wmax); moved-returned > bound {
				t.Errorf("seed %d: weighted: moved %d − returned %d > max(1.25 × minimum, minimum + wmax) = %d (minimum %d)", seed, moved, returned, bound, minimum)
			}
		}
	}
	t.Logf("unit weights: moved − returned == minimum in %d of %d cases", exact, total)
}

func clonePlacementInput(in Input) Input {
	out := cloneInput(in)
	if in.Labels != nil {
		out.Labels = make([][]string, len(in.Labels))
		for m, ls := range in.Labels {
			out.Labels[m] = slices.Clone(ls)
		}
	}
	out.Capacities = slices.Clone(in.Capacities)
	out.ClassOf = slices.Clone(in.ClassOf)
	if in.Classes != nil {
		out.Classes = make([]Class, len(in.Classes))
		for c, cl := range in.Classes {
			out.Classes[c] = Class{Require: slices.Clone(cl.Require), Prefer: slices.Clone(cl.Prefer)}
		}
	}
	return out
}

// zoneFleet returns n members spread round-robin over zones, labelled
// zone=Z and region=eu (zones a, b) or region=us (the others), with
// capacities cycling through caps (nil: capacity 1).
func zoneFleet(zones []string, n int, caps []uint32) (members []string, labels [][]string, capacities []uint32) {
	type mem struct {
		id     string
		labels []string
		cap    uint32
	}
	var all []mem
	for k := range n {
		z := zones[k%len(zones)]
		region := "region=us"
		if z == "a" || z == "b" {
			region = "region=eu"
		}
		c := uint32(1)
		if caps != nil {
			c = caps[(k/len(zones))%len(caps)]
		}
		all = append(all, mem{fmt.Sprintf("worker-%s-%04d", z, k), []string{"zone=" + z, region}, c})
	}
	slices.SortFunc(all, func(a, b mem) int { return cmpString(a.id, b.id) })
	for _, m := range all {
		members = append(members, m.id)
		labels = append(labels, m.labels)
		capacities = append(capacities, m.cap)
	}
	return members, labels, capacities
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// withoutZone returns in's members, labels and capacities without those
// labelled zone=z.
func withoutZone(in Input, z string) Input {
	out := in
	out.Members, out.Labels, out.Capacities = nil, nil, nil
	for m, id := range in.Members {
		if slices.Contains(in.Labels[m], "zone="+z) {
			continue
		}
		out.Members = append(out.Members, id)
		out.Labels = append(out.Labels, in.Labels[m])
		out.Capacities = append(out.Capacities, in.Capacities[m])
	}
	return out
}

// capacityBalance returns max/mean load per capacity unit over members.
func capacityBalance(in Input, out []int32) float64 {
	loads := Loads(out, in.Weights, len(in.Members))
	var total, capTotal uint64
	worst := 0.0
	for m, l := range loads {
		total += l
		capTotal += in.capacity(m)
		worst = max(worst, float64(l)/float64(in.capacity(m)))
	}
	return worst / (float64(total) / float64(capTotal))
}

// classedInput returns the zone fleet's input for p partitions: a fifth
// prefer zone=a, a fifth require region=eu, the rest are unconstrained.
func classedInput(members []string, labels [][]string, caps []uint32, p int) Input {
	in := Input{
		Members: members, Labels: labels, Capacities: caps,
		Partitions: ids("tenant", p),
		Classes:    []Class{{}, {Prefer: []string{"zone=a"}}, {Require: []string{"region=eu"}}},
		ClassOf:    make([]uint32, p),
	}
	for i := range in.ClassOf {
		switch i % 5 {
		case 1:
			in.ClassOf[i] = 1
		case 2:
			in.ClassOf[i] = 2
		}
	}
	return in
}

// settle assigns from empty and once more from the result; it returns the
// steady assignment as Previous.
func settle(t testing.TB, s Strategy, in Input) []string {
	t.Helper()
	in.Previous = nil
	out, err := s.Assign(in)
	if err != nil {
		t.Fatal(err)
	}
	in.Previous = ownerNames(out, in.Members)
	out2, err := s.Assign(in)
	if err != nil {
		t.Fatal(err)
	}
	if moved := Moves(in.Previous, out2, in.Members); moved != 0 {
		t.Fatalf("not a fixed point: %d moves on reassigning a steady state", moved)
	}
	return in.Previous
}

// zoneLossRatio loses zone z from in's steady state and returns the moves,
// the partitions the zone held (the minimum), PlacementMinimum, and the
// capacity balance after the loss.
func zoneLossRatio(t testing.TB, s Placement, in Input, z string) (moved, held int, minimum uint64, balance float64) {
	t.Helper()
	prev := settle(t, s, in)
	lost := withoutZone(in, z)
	lost.Previous = prev
	out, err := s.Assign(lost)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range prev {
		if !slices.Contains(lost.Members, id) {
			held++
		}
	}
	return Moves(prev, out, lost.Members), held, PlacementMinimum(lost, s.Epsilon), capacityBalance(lost, out)
}

// TestPlacementZoneLoss loses each of 3 zones of 3 members (capacities 1, 2
// and 4 in each zone), with unconstrained, affinity and region-constrained
// partitions: exactly the partitions the zone held move, and the load per
// capacity unit stays within the bound; then the zone comes back and only
// affinity returns and raises to lower move.
func TestPlacementZoneLoss(t *testing.T) {
	s := Placement{}
	members, labels, caps := zoneFleet([]string{"a", "b", "c"}, 9, []uint32{1, 2, 4})
	for _, p := range []int{900, 10_000} {
		for _, z := range []string{"a", "b", "c"} {
			in := classedInput(members, labels, caps, p)
			moved, held, minimum, balance := zoneLossRatio(t, s, in, z)
			t.Logf("P=%d lose zone %s: moved %d, zone held %d, minimum %d, max/mean per capacity %.3f", p, z, moved, held, minimum, balance)
			if moved != held || uint64(held) != minimum {
				t.Errorf("P=%d lose zone %s: moved %d, want the %d the zone held (PlacementMinimum %d)", p, z, moved, held, minimum)
			}
			if balance > 1.25 {
				t.Errorf("P=%d lose zone %s: max/mean load per capacity unit %.3f > 1.25", p, z, balance)
			}

			// The zone comes back.
			lost := withoutZone(in, z)
			lost.Previous = settle(t, s, in)
			out, _ := s.Assign(lost)
			back := in
			back.Previous = ownerNames(out, lost.Members)
			out2, err := s.Assign(back)
			if err != nil {
				t.Fatal(err)
			}
			movedBack := MovedWeight(back.Previous, out2, back.Members, nil)
			returned := affinityReturns(back, out2)
			min2 := PlacementMinimum(back, 0)
			t.Logf("P=%d zone %s back: moved %d (affinity returns %d), minimum %d, max/mean per capacity %.3f", p, z, movedBack, returned, min2, capacityBalance(back, out2))
			if movedBack-returned > min2 {
				t.Errorf("P=%d zone %s back: moved %d − returned %d > minimum %d", p, z, movedBack, returned, min2)
			}
			if z == "a" && returned == 0 {
				t.Errorf("P=%d zone a back: no partition returned to zone a by affinity", p)
			}
			if b := capacityBalance(back, out2); b > 1.25 {
				t.Errorf("P=%d zone %s back: max/mean per capacity %.3f > 1.25", p, z, b)
			}
		}
	}
}

// TestPlacementUnplaceable: a class whose constraint no live member meets
// stays unowned and is listed; when a member that meets it joins, exactly
// those partitions are placed on it and nothing else moves.
func TestPlacementUnplaceable(t *testing.T) {
	in := Input{
		Members:    []string{"m1", "m2"},
		Labels:     [][]string{{"zone=a"}, {"zone=b"}},
		Partitions: ids("p", 10),
		Classes:    []Class{{}, {Require: []string{"region=ap"}}},
		ClassOf:    []uint32{0, 1, 0, 1, 0, 0, 0, 0, 0, 0},
	}
	out, err := Placement{}.Assign(in)
	if err != nil {
		t.Fatal(err)
	}
	if out[1] != -1 || out[3] != -1 {
		t.Fatalf("unplaceable partitions owned: %v", out)
	}
	if got := Unplaceable(in); !slices.Equal(got, []int{1, 3}) {
		t.Fatalf("Unplaceable = %v, want [1 3]", got)
	}
	in.Previous = ownerNames(out, in.Members)
	in.Members = []string{"m1", "m2", "m3"}
	in.Labels = append(in.Labels, []string{"zone=c", "region=ap"})
	out2, err := Placement{}.Assign(in)
	if err != nil {
		t.Fatal(err)
	}
	if out2[1] != 2 || out2[3] != 2 {
		t.Fatalf("constrained partitions not placed on m3: %v", out2)
	}
	if len(Unplaceable(in)) != 0 {
		t.Fatalf("Unplaceable = %v, want none", Unplaceable(in))
	}
}

// TestPlacementSmallClassesSpread: many one-partition classes do not all
// land on the lowest-index member.
func TestPlacementSmallClassesSpread(t *testing.T) {
	in := Input{Members: ids("m", 4), Partitions: ids("p", 8), ClassOf: make([]uint32, 8)}
	for i := range in.ClassOf {
		in.Classes = append(in.Classes, Class{Prefer: []string{fmt.Sprintf("k=%d", i)}})
		in.ClassOf[i] = uint32(i)
	}
	out, err := Placement{}.Assign(in)
	if err != nil {
		t.Fatal(err)
	}
	for m, l := range Loads(out, nil, 4) {
		if l != 2 {
			t.Fatalf("member %d owns %d partitions, want 2 each: %v", m, l, out)
		}
	}
}

// TestPlacementInvalidInput: each malformed placement field is rejected
// with ErrInvalidInput.
func TestPlacementInvalidInput(t *testing.T) {
	base := func() Input {
		return Input{
			Members: []string{"m1", "m2"}, Partitions: []string{"p1", "p2"},
			Labels: [][]string{{"zone=a"}, {"zone=b"}}, Capacities: []uint32{1, 2},
			Classes: []Class{{Require: []string{"zone=a"}}}, ClassOf: []uint32{0, 0},
		}
	}
	if _, err := (Placement{}).Assign(base()); err != nil {
		t.Fatalf("valid input rejected: %v", err)
	}
	cases := map[string]func(*Input){
		"labels length":    func(in *Input) { in.Labels = in.Labels[:1] },
		"label no equals":  func(in *Input) { in.Labels[0] = []string{"zone"} },
		"label empty key":  func(in *Input) { in.Labels[1] = []string{"=a"} },
		"capacities len":   func(in *Input) { in.Capacities = []uint32{1} },
		"capacity zero":    func(in *Input) { in.Capacities[1] = 0 },
		"capacity too big": func(in *Input) { in.Capacities[0] = MaxCapacity + 1 },
		"require label":    func(in *Input) { in.Classes[0].Require = []string{"eu"} },
		"prefer label":     func(in *Input) { in.Classes[0].Prefer = []string{""} },
		"classof length":   func(in *Input) { in.ClassOf = []uint32{0} },
		"classof range":    func(in *Input) { in.ClassOf[1] = 1 },
	}
	for name, mutate := range cases {
		in := base()
		mutate(&in)
		if _, err := (Placement{}).Assign(in); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: error = %v, want ErrInvalidInput", name, err)
		}
	}
	for _, eps := range []float64{-1, MaxEpsilon + 1} {
		if _, err := (Placement{Epsilon: eps}).Assign(base()); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("Epsilon %v: error = %v, want ErrInvalidInput", eps, err)
		}
	}
}
