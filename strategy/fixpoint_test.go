package strategy

import "testing"

// TestPlacementFixedPoint: assigning again from Placement's own output, with
// nothing changed, moves nothing.
func TestPlacementFixedPoint(t *testing.T) {
	bad := 0
	for c := range propertyCases {
		rng, seed := newRNG(t, c)
		in := placementCase(rng)
		s := Placement{}
		out, err := s.Assign(in)
		if err != nil {
			t.Fatal(err)
		}
		again := in
		again.Previous = ownerNames(out, in.Members)
		out2, err := s.Assign(again)
		if err != nil {
			t.Fatal(err)
		}
		if n := Moves(again.Previous, out2, in.Members); n != 0 {
			bad++
			if bad <= 3 {
				t.Errorf("seed %d: %d moves reassigning Placement's own output (weights %v)", seed, n, in.Weights != nil)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d cases not a fixed point", bad, propertyCases)
	}
}

// TestPlacementFrozen: freezing members of a steady assignment (a close for
// restart, a cordon) moves nothing, and neither does thawing them; and with
// an arbitrary Previous, a frozen member keeps every previous partition its
// labels allow and receives none.
func TestPlacementFrozen(t *testing.T) {
	for c := range propertyCases {
		rng, seed := newRNG(t, c)
		in := placementCase(rng)
		if len(in.Members) == 0 {
			continue
		}
		in.Frozen = make([]bool, len(in.Members))
		for m := range in.Frozen {
			in.Frozen[m] = rng.IntN(3) == 0
		}
		s := Placement{}
		out, err := s.Assign(in)
		if err != nil {
			t.Fatal(err)
		}
		idx := memberIndex(in.Members)
		for i, o := range out {
			var prev int32 = -1
			if in.Previous != nil {
				if p, ok := idx[in.Previous[i]]; ok {
					prev = p
				}
			}
			elig := prev >= 0 && hasAll(labelsOf(in, prev), in.class(in.classOf(i)).Require)
			if prev >= 0 && in.Frozen[prev] && elig && o != prev {
				t.Fatalf("seed %d: partition %d left frozen member %d for %d", seed, i, prev, o)
			}
			if o >= 0 && in.Frozen[o] && o != prev {
				t.Fatalf("seed %d: frozen member %d received partition %d", seed, o, i)
			}
		}

		// Freeze and thaw a steady state.
		steadyIn := in
		steadyIn.Frozen, steadyIn.Previous = nil, nil
		first, _ := s.Assign(steadyIn)
		steadyIn.Previous = ownerNames(first, in.Members)
		for _, frozen := range [][]bool{in.Frozen, nil} {
			steadyIn.Frozen = frozen
			next, err := s.Assign(steadyIn)
			if err != nil {
				t.Fatal(err)
			}
			if n := Moves(steadyIn.Previous, next, in.Members); n != 0 {
				t.Fatalf("seed %d: %d moves from a steady state with frozen = %v", seed, n, frozen)
			}
		}
	}
}

func labelsOf(in Input, m int32) []string {
	if in.Labels == nil {
		return nil
	}
	return in.Labels[m]
}
