package strategy_test

import (
	"fmt"

	"github.com/parti-io/parti/strategy"
)

// Sticky places partitions from scratch, then rebalances after a member
// joins, moving only the partitions the newcomer needs.
func Example() {
	s, err := strategy.ByName(strategy.Default) // "sticky"
	if err != nil {
		panic(err)
	}
	parts := []string{"tenant-a", "tenant-b", "tenant-c", "tenant-d", "tenant-e", "tenant-f", "tenant-g"}

	in := strategy.Input{Members: []string{"worker-1", "worker-2", "worker-3"}, Partitions: parts}
	first, err := s.Assign(in)
	if err != nil {
		panic(err)
	}
	prev := make([]string, len(first))
	for i, m := range first {
		prev[i] = in.Members[m]
	}
	fmt.Println("first: ", prev)

	// worker-0 joins (Members stay sorted); Previous is the current owners.
	in = strategy.Input{Members: []string{"worker-0", "worker-1", "worker-2", "worker-3"}, Partitions: parts, Previous: prev}
	next, err := s.Assign(in)
	if err != nil {
		panic(err)
	}
	owners := make([]string, len(next))
	for i, m := range next {
		owners[i] = in.Members[m]
	}
	fmt.Println("second:", owners)
	fmt.Println("moves:", strategy.Moves(prev, next, in.Members), "minimum:", strategy.MinimumMoves(in))
	fmt.Println("loads:", strategy.Loads(next, nil, len(in.Members)))
	// Output:
	// first:  [worker-1 worker-3 worker-2 worker-2 worker-1 worker-1 worker-3]
	// second: [worker-1 worker-3 worker-2 worker-2 worker-1 worker-0 worker-3]
	// moves: 1 minimum: 1
	// loads: [1 2 2 2]
}

// WeightedConsistentHash keeps every member's weight within its bounds.
func ExampleWeightedConsistentHash() {
	s := strategy.WeightedConsistentHash{} // Epsilon 0.25, 100 virtual nodes
	in := strategy.Input{
		Members:    []string{"worker-1", "worker-2", "worker-3"},
		Partitions: []string{"big", "mid-1", "mid-2", "small-1", "small-2", "small-3"},
		Weights:    []uint32{8, 4, 4, 2, 2, 2},
	}
	out, err := s.Assign(in)
	if err != nil {
		panic(err)
	}
	lower, upper, _ := s.Bounds(in)
	fmt.Println("owners:", out)
	fmt.Println("loads:", strategy.Loads(out, in.Weights, len(in.Members)), "bounds:", lower, upper)
	// Output:
	// owners: [1 2 0 2 0 1]
	// loads: [6 10 6] bounds: 5 15
}
