package strategy

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestByName(t *testing.T) {
	for _, name := range Names() {
		s, err := ByName(name)
		if err != nil {
			t.Fatalf("ByName(%q): %v", name, err)
		}
		if s.Name() != name {
			t.Errorf("ByName(%q).Name() = %q", name, s.Name())
		}
	}
	if s, _ := ByName(Default); s != (Sticky{}) {
		t.Errorf("default strategy = %#v, want Sticky", s)
	}
	for _, name := range []string{"", "Sticky", "hash", "sticky "} {
		if _, err := ByName(name); !errors.Is(err, ErrUnknownStrategy) {
			t.Errorf("ByName(%q) error = %v, want ErrUnknownStrategy", name, err)
		}
	}
	if !slices.IsSorted(Names()) || len(Names()) != 5 {
		t.Errorf("Names() = %q", Names())
	}
}

func TestInvalidInput(t *testing.T) {
	parts := []string{"p0", "p1", "p2"}
	for _, tc := range []struct {
		name string
		in   Input
	}{
		{"unsorted members", Input{Members: []string{"b", "a"}, Partitions: parts}},
		{"duplicate member", Input{Members: []string{"a", "b", "b"}, Partitions: parts}},
		{"empty member ID", Input{Members: []string{"", "a"}, Partitions: parts}},
		{"short weights", Input{Members: []string{"a"}, Partitions: parts, Weights: []uint32{1, 1}}},
		{"empty non-nil weights", Input{Members: []string{"a"}, Partitions: parts, Weights: []uint32{}}},
		{"zero weight", Input{Members: []string{"a"}, Partitions: parts, Weights: []uint32{1, 0, 1}}},
		{"long previous", Input{Members: []string{"a"}, Partitions: parts, Previous: []string{"a", "a", "a", "a"}}},
		{"short previous", Input{Members: []string{"a"}, Partitions: parts, Previous: []string{}}},
		{"invalid with no members", Input{Partitions: parts, Weights: []uint32{0, 1, 1}}},
	} {
		if err := tc.in.Validate(); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: Validate() = %v, want ErrInvalidInput", tc.name, err)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
		for _, s := range all() {
			out, err := s.Assign(tc.in)
			if !errors.Is(err, ErrInvalidInput) || out != nil {
				t.Errorf("%s: %s.Assign = %v, %v; want nil, ErrInvalidInput", tc.name, s.Name(), out, err)
			}
		}
	}
	valid := Input{Members: []string{"a", "b"}, Partitions: parts, Weights: []uint32{1, 2, 3}, Previous: []string{"", "x", "a"}}
	if err := valid.Validate(); err != nil {
		t.Errorf("valid input: %v", err)
	}
}

func TestInvalidParameters(t *testing.T) {
	in := Input{Members: []string{"a", "b"}, Partitions: []string{"p"}}
	for _, s := range []Strategy{
		ConsistentHash{VirtualNodes: -1},
		ConsistentHash{VirtualNodes: MaxVirtualNodes + 1},
		WeightedConsistentHash{VirtualNodes: -5},
		WeightedConsistentHash{Epsilon: -0.1},
		WeightedConsistentHash{Epsilon: math.NaN()},
		WeightedConsistentHash{Epsilon: math.Inf(1)},
		WeightedConsistentHash{Epsilon: MaxEpsilon * 2},
	} {
		if _, err := s.Assign(in); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%#v: error = %v, want ErrInvalidInput", s, err)
		} else {
			t.Logf("%#v: %v", s, err)
		}
	}
}

func TestMovesAndLoads(t *testing.T) {
	members := []string{"a", "b", "c"}
	prev := []string{"a", "", "b", "gone", "c", "a"}
	next := []int32{0, 1, 2, 0, 2, 1}
	weights := []uint32{1, 2, 3, 4, 5, 6}
	// p0 stays; p1 was unowned (placed, not moved); p2 b->c moves; p3
	// departed moves; p4 stays; p5 a->b moves.
	if got := Moves(prev, next, members); got != 3 {
		t.Errorf("Moves = %d, want 3", got)
	}
	if got := MovedWeight(prev, next, members, weights); got != 3+4+6 {
		t.Errorf("MovedWeight = %d, want 13", got)
	}
	if got := MovedWeight(prev, next, members, nil); got != 3 {
		t.Errorf("MovedWeight(nil weights) = %d, want 3", got)
	}
	if got := Moves(nil, next, members); got != 0 {
		t.Errorf("Moves(nil prev) = %d", got)
	}
	if got := Moves(prev, []int32{-1, -1, -1, -1, -1, -1}, nil); got != 5 {
		t.Errorf("Moves to nobody = %d, want 5 (every owned partition)", got)
	}
	if diff := cmp.Diff([]uint64{2, 2, 2}, Loads(next, nil, 3)); diff != "" {
		t.Errorf("Loads counts:\n%s", diff)
	}
	if diff := cmp.Diff([]uint64{5, 8, 8}, Loads(next, weights, 3)); diff != "" {
		t.Errorf("Loads weights:\n%s", diff)
	}
	if diff := cmp.Diff([]uint64{0, 0}, Loads([]int32{-1, -1}, nil, 2)); diff != "" {
		t.Errorf("Loads of -1:\n%s", diff)
	}
}

func TestMinimumMovesExamples(t *testing.T) {
	members := []string{"a", "b", "c"}
	for _, tc := range []struct {
		name    string
		members []string
		prev    []string
		want    int
	}{
		{"nil previous", members, nil, 0},
		{"all unowned", members, []string{"", "", "", ""}, 0},
		// 7 partitions, 3 members: targets 3,2,2 to the largest owners.
		{"balanced", members, []string{"a", "a", "a", "b", "b", "c", "c"}, 0},
		{"a owns all", members, []string{"a", "a", "a", "a", "a", "a", "a"}, 4},
		{"departed and surplus", members, []string{"x", "x", "a", "a", "a", "a", "b"}, 2 + 1},
		// Ties among the largest owners go to the lower ID, but either way
		// the minimum is the same.
		{"tie", members, []string{"b", "b", "c", "c", ""}, 0},
		{"no members", nil, []string{"a", "", "b"}, 2},
	} {
		in := Input{Members: tc.members, Partitions: ids("p", max(len(tc.prev), 4)), Previous: tc.prev}
		if tc.prev != nil {
			in.Partitions = ids("p", len(tc.prev))
		}
		if got := MinimumMoves(in); got != tc.want {
			t.Errorf("%s: MinimumMoves = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestExcessWeightExamples(t *testing.T) {
	// Two members, weights 4 each, 8 partitions: W = 32, avg 16, eps 0.25:
	// upper = max(20, 16+4) = 20, lower = 12.
	in := Input{Members: []string{"a", "b"}, Partitions: ids("p", 8), Weights: []uint32{4, 4, 4, 4, 4, 4, 4, 4}}
	in.Previous = []string{"a", "a", "a", "a", "a", "a", "b", "b"} // a 24, b 8
	if got := ExcessWeight(in, 0); got != 4 {                      // over 4, deficit 4
		t.Errorf("ExcessWeight = %d, want 4", got)
	}
	in.Previous = []string{"a", "a", "a", "a", "gone", "gone", "", ""} // a 16, b 0; D 8, U 8
	if got := ExcessWeight(in, 0); got != 8 {                          // deficit 12 <= D+U: just D
		t.Errorf("ExcessWeight = %d, want 8", got)
	}
	in.Previous = []string{"a", "a", "a", "a", "a", "a", "a", "gone"} // a 28: over 8; b deficit 12 - D 4 = 8
	if got := ExcessWeight(in, 0); got != 4+8 {
		t.Errorf("ExcessWeight = %d, want 12", got)
	}
	in.Members = nil
	if got := ExcessWeight(in, 0); got != 32 {
		t.Errorf("ExcessWeight with no members = %d, want 32", got)
	}
}

func TestLoadBounds(t *testing.T) {
	for _, tc := range []struct {
		total          uint64
		n              int
		maxw, ppm      uint64
		wantLo, wantUp uint64
	}{
		{10_000, 150, 1, 250_000, 50, 84}, // avg 66.67: floor(50.0), ceil(83.33)
		{300, 2, 100, 250_000, 112, 250},  // the documented coarse example
		{7, 4, 1, 0, 1, 2},                // eps 0: floor(1.75); max(ceil(1.75), 1+1)
		{100, 3, 1, 1_000_000, 0, 67},     // eps 1: lower 0
		{100, 3, 40, 10, 33, 73},          // a heavy partition lifts upper to floor(avg) + wmax
		{math.MaxUint64 - 10, 1, 5, 250_000, 13835058055282163703, math.MaxUint64}, // lower = 0.75·2^64 − 9; upper saturates
	} {
		lower, upper := loadBounds(tc.total, tc.n, tc.maxw, tc.ppm)
		if lower != tc.wantLo || upper != tc.wantUp {
			t.Errorf("loadBounds(%d, %d, %d, %d) = %d, %d; want %d, %d", tc.total, tc.n, tc.maxw, tc.ppm, lower, upper, tc.wantLo, tc.wantUp)
		}
	}
	// The documented example: three partitions of 100 on two members leave
	// one member below lower, and the strategy still honours upper.
	in := Input{Members: []string{"a", "b"}, Partitions: []string{"x", "y", "z"}, Weights: []uint32{100, 100, 100}}
	out, err := WeightedConsistentHash{}.Assign(in)
	if err != nil {
		t.Fatal(err)
	}
	loads := Loads(out, in.Weights, 2)
	slices.Sort(loads)
	if diff := cmp.Diff([]uint64{100, 200}, loads); diff != "" {
		t.Errorf("loads:\n%s", diff)
	}
}
