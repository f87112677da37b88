package strategy_test

import (
	"fmt"

	"github.com/parti-io/parti/strategy"
)

// Placement keeps EU tenants on EU members, prefers zone a for one tenant,
// gives the capacity-2 member twice the share, and when zone a is lost moves
// only what zone a held.
func ExamplePlacement() {
	in := strategy.Input{
		Members:    []string{"a-1", "b-1", "c-1"},
		Labels:     [][]string{{"zone=a", "region=eu"}, {"zone=b", "region=eu"}, {"zone=c", "region=us"}},
		Capacities: []uint32{1, 1, 2},
		Partitions: []string{"t01", "t02", "t03", "t04", "t05", "t06", "t07", "t08", "t09", "t10", "t11", "t12"},
		// t01-t04 must stay in the EU; t05 prefers zone a; the rest go anywhere.
		Classes: []strategy.Class{{}, {Require: []string{"region=eu"}}, {Prefer: []string{"zone=a"}}},
		ClassOf: []uint32{1, 1, 1, 1, 2, 0, 0, 0, 0, 0, 0, 0},
	}
	s := strategy.Placement{}
	out, err := s.Assign(in)
	if err != nil {
		panic(err)
	}
	owners := func(in strategy.Input, out []int32) []string {
		ids := make([]string, len(out))
		for i, m := range out {
			if m >= 0 {
				ids[i] = in.Members[m]
			}
		}
		return ids
	}
	fmt.Println("owners:", owners(in, out))

	// Zone a is lost.
	lost := in
	lost.Members, lost.Labels, lost.Capacities = in.Members[1:], in.Labels[1:], in.Capacities[1:]
	lost.Previous = owners(in, out)
	next, err := s.Assign(lost)
	if err != nil {
		panic(err)
	}
	fmt.Println("owners:", owners(lost, next))
	fmt.Println("moves:", strategy.Moves(lost.Previous, next, lost.Members), "minimum:", strategy.PlacementMinimum(lost, 0))
	// Output:
	// owners: [a-1 b-1 a-1 b-1 a-1 c-1 c-1 c-1 b-1 a-1 c-1 b-1]
	// owners: [b-1 b-1 b-1 b-1 c-1 c-1 c-1 c-1 b-1 c-1 c-1 b-1]
	// moves: 4 minimum: 4
}
