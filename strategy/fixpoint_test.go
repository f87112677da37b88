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
