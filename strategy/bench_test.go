package strategy

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

var benchSizes = []struct{ n, p int }{{150, 10_000}, {500, 100_000}}

// BenchmarkAssign times each strategy "from empty" (no Previous) and as a
// "full rebalance": from its own steady assignment with one member added.
// The rebalance reports its moves and the minimum (MinimumMoves; for the
// weighted strategy, ExcessWeight and moved weight / ExcessWeight).
func BenchmarkAssign(b *testing.B) {
	for _, s := range all() {
		for _, sz := range benchSizes {
			members, parts := ids("worker", sz.n), ids("tenant", sz.p)
			name := fmt.Sprintf("%s/%dx%d", s.Name(), sz.n, sz.p)
			b.Run(name+"/empty", func(b *testing.B) {
				benchAssign(b, s, Input{Members: members, Partitions: parts})
			})
			b.Run(name+"/plus1", func(b *testing.B) {
				prev := steady(b, s, members, parts, nil)
				benchAssign(b, s, Input{Members: addMembers(members, 1), Partitions: parts, Previous: prev})
			})
		}
	}
	// Weighted partitions (weights 1..100) for the weighted strategy.
	s := WeightedConsistentHash{}
	for _, sz := range benchSizes {
		members, parts := ids("worker", sz.n), ids("tenant", sz.p)
		weights := randomWeights(rand.New(rand.NewPCG(7, 7)), sz.p, 100)
		name := fmt.Sprintf("%s-w100/%dx%d", s.Name(), sz.n, sz.p)
		b.Run(name+"/empty", func(b *testing.B) {
			benchAssign(b, s, Input{Members: members, Partitions: parts, Weights: weights})
		})
		b.Run(name+"/plus1", func(b *testing.B) {
			prev := steady(b, s, members, parts, weights)
			benchAssign(b, s, Input{Members: addMembers(members, 1), Partitions: parts, Weights: weights, Previous: prev})
		})
	}
}

func benchAssign(b *testing.B, s Strategy, in Input) {
	b.ReportAllocs()
	var out []int32
	var err error
	for b.Loop() {
		out, err = s.Assign(in)
	}
	if err != nil {
		b.Fatal(err)
	}
	reportMoves(b, s, in, out)
}

func reportMoves(b *testing.B, s Strategy, in Input, out []int32) {
	if in.Previous == nil {
		hi, lo := spread(Loads(out, in.Weights, len(in.Members)))
		b.ReportMetric(hi, "max/avg")
		b.ReportMetric(lo, "min/avg")
		return
	}
	b.ReportMetric(float64(Moves(in.Previous, out, in.Members)), "moves")
	if w, ok := s.(WeightedConsistentHash); ok {
		// Its own minimum: ExcessWeight under its looser bounds.
		moved, excess := MovedWeight(in.Previous, out, in.Members, in.Weights), ExcessWeight(in, w.Epsilon)
		b.ReportMetric(float64(excess), "excess-weight")
		b.ReportMetric(float64(moved)/float64(max(excess, 1)), "moved/excess")
		return
	}
	if pl, ok := s.(Placement); ok {
		b.ReportMetric(float64(PlacementMinimum(in, pl.Epsilon)), "placement-min")
		return
	}
	b.ReportMetric(float64(MinimumMoves(in)), "min-moves")
}

// scaleRatio scales members 10 -> 11 from s's steady state and returns
// moves/minimum: MinimumMoves for Sticky, ExcessWeight (the weighted
// strategy's own minimum) for WeightedConsistentHash.
func scaleRatio(t testing.TB, s Strategy, p int, weights []uint32) (moves, minimum uint64) {
	members, parts := ids("worker", 10), ids("tenant", p)
	in := Input{Members: addMembers(members, 1), Partitions: parts, Weights: weights, Previous: steady(t, s, members, parts, weights)}
	out, err := s.Assign(in)
	if err != nil {
		t.Fatal(err)
	}
	if w, ok := s.(WeightedConsistentHash); ok {
		return MovedWeight(in.Previous, out, in.Members, weights), ExcessWeight(in, w.Epsilon)
	}
	return uint64(Moves(in.Previous, out, in.Members)), uint64(MinimumMoves(in))
}

// TestScaleUp10to11 is the 10 -> 11 scale-up target: moved / minimum <= 1.05.
func TestScaleUp10to11(t *testing.T) {
	for _, p := range []int{100, 1000, 10_000, 100_000} {
		for _, s := range stickies() {
			for _, weighted := range []bool{false, true} {
				if weighted && s.Name() != NameWeightedConsistentHash {
					continue
				}
				var weights []uint32
				if weighted {
					weights = randomWeights(rand.New(rand.NewPCG(uint64(p), 11)), p, 100)
				}
				moves, minimum := scaleRatio(t, s, p, weights)
				ratio := float64(moves) / float64(minimum)
				t.Logf("%-24s weighted=%-5v P=%-6d moved %6d minimum %6d ratio %.4f", s.Name(), weighted, p, moves, minimum, ratio)
				if ratio > 1.05 {
					t.Errorf("%s weighted=%v P=%d: moved/minimum = %.4f > 1.05", s.Name(), weighted, p, ratio)
				}
			}
		}
	}
}

// BenchmarkScaleUp10to11 times the 10 -> 11 rebalance of 10,000 partitions
// and reports moved/minimum.
func BenchmarkScaleUp10to11(b *testing.B) {
	for _, s := range stickies() {
		b.Run(s.Name(), func(b *testing.B) {
			members, parts := ids("worker", 10), ids("tenant", 10_000)
			in := Input{Members: addMembers(members, 1), Partitions: parts, Previous: steady(b, s, members, parts, nil)}
			benchAssign(b, s, in)
			moves, minimum := scaleRatio(b, s, 10_000, nil)
			b.ReportMetric(float64(moves)/float64(minimum), "moved/minimum")
		})
	}
}

// TestConsistentHashSpread measures (and only prints) how evenly plain
// consistent hashing spreads partitions: it promises coverage, not balance.
func TestConsistentHashSpread(t *testing.T) {
	for _, v := range []int{0, 400} {
		for _, sz := range []struct{ n, p int }{{10, 1000}, {10, 100_000}, {150, 10_000}, {500, 100_000}} {
			s := ConsistentHash{VirtualNodes: v}
			in := Input{Members: ids("worker", sz.n), Partitions: ids("tenant", sz.p)}
			out, err := s.Assign(in)
			if err != nil {
				t.Fatal(err)
			}
			hi, lo := spread(Loads(out, nil, sz.n))
			t.Logf("consistent-hash vnodes=%-3d %3d members x %6d partitions: max/avg %.3f min/avg %.3f", max(v, DefaultVirtualNodes), sz.n, sz.p, hi, lo)
		}
	}
}

// BenchmarkPlacement times Placement at 150 × 10,000 and 500 × 100,000:
// members in 3 zones with capacities 1, 2 and 4, a fifth of the partitions
// preferring zone a and a fifth requiring region=eu. "empty" assigns from
// nothing, "plus1" rebalances after one member joins, "zone-loss" after
// zone c (a third of the members) is lost; the last reports moves over the
// partitions the zone held and max/mean load per capacity unit.
func BenchmarkPlacement(b *testing.B) {
	s := Placement{}
	for _, sz := range benchSizes {
		members, labels, caps := zoneFleet([]string{"a", "b", "c"}, sz.n, []uint32{1, 2, 4})
		in := classedInput(members, labels, caps, sz.p)
		name := fmt.Sprintf("%dx%d", sz.n, sz.p)
		b.Run(name+"/empty", func(b *testing.B) {
			benchAssign(b, s, in)
			out, _ := s.Assign(in)
			b.ReportMetric(capacityBalance(in, out), "max/mean-per-cap")
		})
		b.Run(name+"/plus1", func(b *testing.B) {
			prev := settle(b, s, in)
			plus := in
			plus.Members = append(slices.Clone(in.Members), "worker-z-new")
			plus.Labels = append(slices.Clone(in.Labels), []string{"zone=z", "region=us"})
			plus.Capacities = append(slices.Clone(in.Capacities), 2)
			plus.Previous = prev
			benchAssign(b, s, plus)
		})
		b.Run(name+"/zone-loss", func(b *testing.B) {
			prev := settle(b, s, in)
			lost := withoutZone(in, "c")
			lost.Previous = prev
			benchAssign(b, s, lost)
			moved, held, _, balance := zoneLossRatio(b, s, in, "c")
			b.ReportMetric(float64(moved)/float64(held), "moved/held")
			b.ReportMetric(balance, "max/mean-per-cap")
		})
	}
}
