package strategy

import (
	"testing"
)

// TestStickinessUnderChanges starts each sticky strategy from its own steady
// state and changes the members by +1, -1, +10 %, -10 % and a one-for-one
// replacement, on random sizes. Sticky must move exactly MinimumMoves; the
// weighted strategy must move exactly ExcessWeight with unit weights and,
// with "fine" weights (where the lower bound is guaranteed), at most
// max(1.25 × ExcessWeight, ExcessWeight + wmax). Worst ratios are printed,
// including the coarse cases, where granularity can exceed them.
func TestStickinessUnderChanges(t *testing.T) {
	worst := map[string]float64{}
	var names []string
	record := func(key string, moved, minimum uint64) {
		if _, ok := worst[key]; !ok {
			names = append(names, key)
		}
		if minimum > 0 {
			worst[key] = max(worst[key], float64(moved)/float64(minimum))
		}
	}
	for c := range 400 {
		rng, seed := newRNG(t, c)
		n := 2 + rng.IntN(60)
		members, parts := ids("m", n), ids("p", n+rng.IntN(3000))
		var weights []uint32
		if c%2 == 1 {
			weights = randomWeights(rng, len(parts), 1+rng.Uint32N(100))
		}
		for _, ch := range changes {
			next := ch.next(rng, members)
			for _, s := range stickies() {
				if weights != nil && s.Name() == NameSticky {
					continue // Sticky balances counts only
				}
				in := Input{Members: next, Partitions: parts, Weights: weights, Previous: steady(t, s, members, parts, weights)}
				out, err := s.Assign(in)
				if err != nil {
					t.Fatal(err)
				}
				moves, minimum := Moves(in.Previous, out, next), MinimumMoves(in)
				switch w := s.(type) {
				case Sticky:
					if moves != minimum {
						t.Fatalf("seed %d: %s %s (%d members, %d partitions): %d moves, minimum %d", seed, s.Name(), ch.name, n, len(parts), moves, minimum)
					}
					record("sticky "+ch.name+" moves/MinimumMoves", uint64(moves), uint64(minimum))
				case WeightedConsistentHash:
					moved, excess := MovedWeight(in.Previous, out, next, weights), ExcessWeight(in, w.Epsilon)
					if weights == nil {
						if moved != excess {
							t.Fatalf("seed %d: %s %s unit weights: moved %d, excess %d", seed, s.Name(), ch.name, moved, excess)
						}
						record("weighted unit "+ch.name+" moves/MinimumMoves(counts)", uint64(moves), uint64(minimum))
						continue
					}
					bin := "coarse"
					if guaranteed(w, in) {
						bin = "fine"
						if _, maxw, _ := weightStats(weights, len(parts)); float64(moved) > max(1.25*float64(excess), float64(excess+maxw)) {
							t.Fatalf("seed %d: %s %s: moved weight %d > max(1.25 × excess, excess + wmax) (excess %d, wmax %d)", seed, s.Name(), ch.name, moved, excess, maxw)
						}
					}
					record("weighted "+bin+" "+ch.name+" moved/ExcessWeight", moved, excess)
				}
			}
		}
	}
	for _, k := range names {
		t.Logf("worst %-50s %.4f", k, worst[k])
	}
}

// guaranteed reports whether s guarantees the lower bound for in (the
// heaviest partition weighs at most floor(W/N) − lower + 1): "fine" weights.
func guaranteed(s WeightedConsistentHash, in Input) bool {
	total, maxw, _ := weightStats(in.Weights, len(in.Partitions))
	lower, _, _ := s.Bounds(in)
	return len(in.Members) > 0 && lowerGuaranteed(total, len(in.Members), maxw, lower)
}

// TestWeightedMovesArbitrary measures moved weight against ExcessWeight from
// arbitrary previous assignments (owners at random, departed IDs, unowned).
// Where the lower bound is guaranteed ("fine" weights) it asserts
// moved <= max(1.25 × ExcessWeight, ExcessWeight + heaviest partition): the
// granularity of one partition can always exceed a ratio on small moves.
// The worst ratios are printed, including coarse cases (no assertion).
func TestWeightedMovesArbitrary(t *testing.T) {
	var worstFine, worstCoarse, worstSlack, worstBig float64
	var fine, coarse, big int
	for c := range propertyCases {
		rng, seed := newRNG(t, c)
		in := arbitraryCase(rng)
		if in.Previous == nil || len(in.Members) == 0 || len(in.Partitions) == 0 {
			continue
		}
		if c%2 == 0 { // larger inputs too
			in.Partitions = ids("p", 100+rng.IntN(900))
			in.Weights = randomWeights(rng, len(in.Partitions), 1+rng.Uint32N(40))
			in.Previous = make([]string, len(in.Partitions))
			for i := range in.Previous {
				if k := rng.IntN(len(in.Members) + 2); k < len(in.Members) {
					in.Previous[i] = in.Members[k]
				} else if k == len(in.Members) {
					in.Previous[i] = "gone"
				}
			}
		}
		s := WeightedConsistentHash{Epsilon: []float64{0, 0.05, 0.5}[rng.IntN(3)]}
		out, _ := s.Assign(in)
		moved, excess := MovedWeight(in.Previous, out, in.Members, in.Weights), ExcessWeight(in, s.Epsilon)
		_, maxw, _ := weightStats(in.Weights, len(in.Partitions))
		ratio := float64(moved) / float64(max(excess, 1))
		if !guaranteed(s, in) {
			coarse++
			worstCoarse = max(worstCoarse, ratio)
			continue
		}
		fine++
		if moved < excess {
			t.Fatalf("seed %d: %+v: moved %d < ExcessWeight %d: the bound is wrong", seed, s, moved, excess)
		}
		if float64(moved) > max(1.25*float64(excess), float64(excess+maxw)) {
			t.Fatalf("seed %d: %+v: moved %d > max(1.25 × excess, excess + wmax) (excess %d, wmax %d)", seed, s, moved, excess, maxw)
		}
		worstFine = max(worstFine, ratio)
		worstSlack = max(worstSlack, float64(moved-excess)/float64(maxw))
		if excess >= 4*maxw {
			big++
			worstBig = max(worstBig, ratio)
		}
	}
	t.Logf("fine weights: %d cases, worst moved/excess %.4f, worst (moved-excess)/wmax %.3f; with excess >= 4 wmax: %d cases, worst %.4f", fine, worstFine, worstSlack, big, worstBig)
	t.Logf("coarse weights: %d cases, worst moved/max(excess,1) %.4f", coarse, worstCoarse)
}
