package strategy

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const propertyCases = 3000

func cloneInput(in Input) Input {
	return Input{
		Members:    slices.Clone(in.Members),
		Partitions: slices.Clone(in.Partitions),
		Weights:    slices.Clone(in.Weights),
		Previous:   slices.Clone(in.Previous),
	}
}

// TestMatchesReference holds every strategy to its naive reference,
// exactly, on random inputs (random virtual nodes and epsilon too).
func TestMatchesReference(t *testing.T) {
	epsilons := []float64{0, 0.01, 0.1, 0.25, 0.5, 1, 3}
	for c := range propertyCases {
		rng, seed := newRNG(t, c)
		in := arbitraryCase(rng)
		vnodes := []int{0, 1, 2, 7, 50}[rng.IntN(5)]
		eps := epsilons[rng.IntN(len(epsilons))]
		refV := vnodes
		if refV == 0 {
			refV = DefaultVirtualNodes
		}
		check := func(s Strategy, want []int32) {
			t.Helper()
			got, err := s.Assign(in)
			if err != nil {
				t.Fatalf("seed %d: %s: %v", seed, s.Name(), err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("seed %d: %+v: %+v\nassignment differs from the reference (-ref +got):\n%s", seed, s, in, diff)
			}
		}
		check(ConsistentHash{VirtualNodes: vnodes}, refConsistentHash(in, refV))
		check(Sticky{}, refSticky(in))
		check(WeightedConsistentHash{VirtualNodes: vnodes, Epsilon: eps}, refWeighted(in, refV, eps))
	}
}

// TestRingLookupMatchesLinearScan checks the bucketed binary-search-free
// lookup against a linear scan over the sorted points, including hashes at,
// just before and just after every point and both ends of the ring.
func TestRingLookupMatchesLinearScan(t *testing.T) {
	for c := range 200 {
		rng, seed := newRNG(t, c)
		members := sortedSample(rng, ids("m", 40), 1+rng.IntN(40))
		vnodes := 1 + rng.IntN(30)
		r := newRing(members, vnodes)
		ref := newRefRing(members, vnodes)
		if len(r.hash) != len(ref) {
			t.Fatalf("seed %d: %d points, want %d", seed, len(r.hash), len(ref))
		}
		for i, pt := range ref {
			if r.hash[i] != pt.hash || int(r.owner[i]) != pt.member || int(r.id[i]) != pt.member*vnodes+pt.vnode {
				t.Fatalf("seed %d: point %d = (%x, %d), want %+v", seed, i, r.hash[i], r.owner[i], pt)
			}
		}
		probes := []uint64{0, 1, ^uint64(0), ^uint64(0) - 1}
		for _, pt := range ref {
			probes = append(probes, pt.hash, pt.hash-1, pt.hash+1)
		}
		for range 1000 {
			probes = append(probes, rng.Uint64())
		}
		for _, h := range probes {
			if got, want := int(r.lookup(h)), ref.index(h); got != want {
				t.Fatalf("seed %d: lookup(%x) = %d, want %d", seed, h, got, want)
			}
		}
	}
}

// TestCommonProperties: every strategy covers every partition exactly once
// (or -1 with no members), is deterministic, leaves its input alone, and
// gives the same result however the (canonical) input was built.
func TestCommonProperties(t *testing.T) {
	for c := range propertyCases {
		rng, seed := newRNG(t, c)
		in := arbitraryCase(rng)
		orig := cloneInput(in)

		// The same input built another way: members gathered in a shuffled
		// order and then sorted, as the decider would.
		shuffled := slices.Clone(in.Members)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		rebuilt := cloneInput(in)
		rebuilt.Members = slices.Sorted(slices.Values(shuffled))

		for _, s := range all() {
			out, err := s.Assign(in)
			if err != nil {
				t.Fatalf("seed %d: %s: %v", seed, s.Name(), err)
			}
			if len(out) != len(in.Partitions) {
				t.Fatalf("seed %d: %s: %d entries for %d partitions", seed, s.Name(), len(out), len(in.Partitions))
			}
			for i, o := range out {
				if len(in.Members) == 0 && o != -1 || len(in.Members) > 0 && (o < 0 || int(o) >= len(in.Members)) {
					t.Fatalf("seed %d: %s: partition %d -> %d with %d members", seed, s.Name(), i, o, len(in.Members))
				}
			}
			if diff := cmp.Diff(orig, in); diff != "" {
				t.Fatalf("seed %d: %s modified its input:\n%s", seed, s.Name(), diff)
			}
			again, _ := s.Assign(in)
			other, _ := s.Assign(rebuilt)
			if diff := cmp.Diff(out, again); diff != "" {
				t.Fatalf("seed %d: %s: not deterministic:\n%s", seed, s.Name(), diff)
			}
			if diff := cmp.Diff(out, other); diff != "" {
				t.Fatalf("seed %d: %s: depends on how the input was built:\n%s", seed, s.Name(), diff)
			}
		}
	}
}

// TestConsistentHashFollowsIDs: consistent hashing places a partition by its
// ID alone, so permuting the partitions permutes the result alike.
func TestConsistentHashFollowsIDs(t *testing.T) {
	for c := range 300 {
		rng, seed := newRNG(t, c)
		in := arbitraryCase(rng)
		if len(in.Members) == 0 {
			continue
		}
		out, _ := ConsistentHash{}.Assign(in)
		perm := rng.Perm(len(in.Partitions))
		pin := Input{Members: in.Members, Partitions: make([]string, len(perm))}
		for k, i := range perm {
			pin.Partitions[k] = in.Partitions[i]
		}
		pout, _ := ConsistentHash{}.Assign(pin)
		for k, i := range perm {
			if pout[k] != out[i] {
				t.Fatalf("seed %d: partition %q -> %d, after permuting -> %d", seed, in.Partitions[i], out[i], pout[k])
			}
		}
	}
}

func TestNoMembersNoPartitions(t *testing.T) {
	parts := ids("p", 5)
	for _, s := range all() {
		out, err := s.Assign(Input{Partitions: parts, Previous: []string{"a", "", "b", "a", ""}})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int32{-1, -1, -1, -1, -1}, out); diff != "" {
			t.Errorf("%s with no members:\n%s", s.Name(), diff)
		}
		out, err = s.Assign(Input{Members: []string{"a"}})
		if err != nil || out == nil || len(out) != 0 {
			t.Errorf("%s with no partitions = %v, %v; want empty, nil", s.Name(), out, err)
		}
	}
}

// TestCountBalance: RoundRobin and Sticky keep max - min count <= 1.
func TestCountBalance(t *testing.T) {
	for c := range propertyCases {
		rng, seed := newRNG(t, c)
		in := arbitraryCase(rng)
		if len(in.Members) == 0 {
			continue
		}
		for _, s := range []Strategy{RoundRobin{}, Sticky{}} {
			out, _ := s.Assign(in)
			hi, lo := uint64(0), ^uint64(0)
			for _, l := range Loads(out, nil, len(in.Members)) {
				hi, lo = max(hi, l), min(lo, l)
			}
			if hi-lo > 1 {
				t.Fatalf("seed %d: %s: counts from %d to %d", seed, s.Name(), lo, hi)
			}
		}
	}
}

// TestWeightedBounds: every load <= upper always, and >= lower whenever the
// heaviest partition weighs at most floor(W/N) - lower + 1.
func TestWeightedBounds(t *testing.T) {
	epsilons := []float64{0, 0.01, 0.1, 0.5, 1}
	var guaranteed, missedOutside, outside int
	for c := range propertyCases {
		rng, seed := newRNG(t, c)
		in := arbitraryCase(rng)
		if len(in.Members) == 0 {
			continue
		}
		if rng.IntN(2) == 0 { // also large, heavy inputs
			in.Partitions = ids("p", 200+rng.IntN(800))
			in.Weights = randomWeights(rng, len(in.Partitions), 1+rng.Uint32N(60))
			in.Previous = nil
		}
		s := WeightedConsistentHash{Epsilon: epsilons[rng.IntN(len(epsilons))]}
		out, err := s.Assign(in)
		if err != nil {
			t.Fatal(err)
		}
		lower, upper, _ := s.Bounds(in)
		total, maxw, _ := weightStats(in.Weights, len(in.Partitions))
		achievable := lowerGuaranteed(total, len(in.Members), maxw, lower)
		missed := false
		for m, l := range Loads(out, in.Weights, len(in.Members)) {
			if l > upper {
				t.Fatalf("seed %d: %+v: member %d load %d > upper %d", seed, s, m, l, upper)
			}
			if l < lower {
				missed = true
				if achievable {
					t.Fatalf("seed %d: %+v: member %d load %d < lower %d (wmax %d, W %d)", seed, s, m, l, lower, maxw, total)
				}
			}
		}
		if achievable {
			guaranteed++
		} else {
			outside++
			if missed {
				missedOutside++
			}
		}
	}
	t.Logf("lower bound guaranteed in %d cases; outside the guarantee in %d cases, missed in %d of them", guaranteed, outside, missedOutside)
}

// TestStickyMovesAreMinimal: on arbitrary previous assignments (members,
// departed IDs, unowned), Sticky moves exactly MinimumMoves.
func TestStickyMovesAreMinimal(t *testing.T) {
	for c := range propertyCases {
		rng, seed := newRNG(t, c)
		in := arbitraryCase(rng)
		out, _ := Sticky{}.Assign(in)
		if got, want := Moves(in.Previous, out, in.Members), MinimumMoves(in); got != want {
			t.Fatalf("seed %d: %+v: %d moves, minimum %d", seed, in, got, want)
		}
	}
}

// TestWeightedMovesUnitWeights: with unit weights WeightedConsistentHash
// moves exactly ExcessWeight, the lower bound for its own load bounds.
func TestWeightedMovesUnitWeights(t *testing.T) {
	for c := range propertyCases {
		rng, seed := newRNG(t, c)
		in := arbitraryCase(rng)
		in.Weights = nil
		eps := []float64{0, 0.05, 0.5}[rng.IntN(3)]
		out, _ := WeightedConsistentHash{Epsilon: eps}.Assign(in)
		if got, want := MovedWeight(in.Previous, out, in.Members, nil), ExcessWeight(in, eps); got != want {
			t.Fatalf("seed %d: eps %v: %+v: moved %d, excess %d", seed, eps, in, got, want)
		}
	}
}

// TestMinimumMovesIsMinimal checks MinimumMoves against brute force: the
// fewest moves over every balanced assignment of a tiny input.
func TestMinimumMovesIsMinimal(t *testing.T) {
	for c := range 1500 {
		rng, seed := newRNG(t, c)
		pool := ids("m", 5)
		in := Input{
			Members:    sortedSample(rng, pool, 1+rng.IntN(3)),
			Partitions: ids("p", rng.IntN(8)),
		}
		in.Previous = make([]string, len(in.Partitions))
		for i := range in.Previous {
			if k := rng.IntN(len(pool) + 2); k < len(pool) {
				in.Previous[i] = pool[k]
			}
		}
		n, p := len(in.Members), len(in.Partitions)
		best := -1
		next := make([]int32, p)
		var walk func(i int)
		walk = func(i int) {
			if i == p {
				hi, lo := uint64(0), ^uint64(0)
				for _, l := range Loads(next, nil, n) {
					hi, lo = max(hi, l), min(lo, l)
				}
				if hi-lo <= 1 {
					if mv := Moves(in.Previous, next, in.Members); best < 0 || mv < best {
						best = mv
					}
				}
				return
			}
			for m := range n {
				next[i] = int32(m)
				walk(i + 1)
			}
		}
		walk(0)
		if got := MinimumMoves(in); got != best {
			t.Fatalf("seed %d: %+v: MinimumMoves = %d, brute force %d", seed, in, got, best)
		}
	}
}

// TestZeroMovesWhenUnchanged: fed their own output back with the same
// members, the sticky strategies return it unchanged.
func TestZeroMovesWhenUnchanged(t *testing.T) {
	for c := range propertyCases {
		rng, seed := newRNG(t, c)
		in := arbitraryCase(rng)
		for _, s := range stickies() {
			out, _ := s.Assign(in)
			again := in
			again.Previous = ownerNames(out, in.Members)
			out2, _ := s.Assign(again)
			if diff := cmp.Diff(out, out2); diff != "" {
				t.Fatalf("seed %d: %s: changed its own output:\n%s", seed, s.Name(), diff)
			}
		}
	}
}
