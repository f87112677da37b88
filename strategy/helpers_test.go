package strategy

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

var seedFlag = flag.Uint64("strategy.seed", 1, "base seed of the random property tests; each case prints its own seed on failure")

// all returns one of each strategy, with default parameters.
func all() []Strategy {
	return []Strategy{ConsistentHash{}, RoundRobin{}, WeightedConsistentHash{}, Sticky{}}
}

// sticky returns the strategies that honour Previous.
func stickies() []Strategy {
	return []Strategy{WeightedConsistentHash{}, Sticky{}}
}

// ids returns n IDs prefix-0000, prefix-0001, ... (sorted).
func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%04d", prefix, i)
	}
	return out
}

// ownerNames turns an assignment into Previous form.
func ownerNames(out []int32, members []string) []string {
	prev := make([]string, len(out))
	for i, o := range out {
		if o >= 0 {
			prev[i] = members[o]
		}
	}
	return prev
}

// newRNG returns a generator for one case and the seed that reproduces it.
func newRNG(t testing.TB, c int) (*rand.Rand, uint64) {
	seed := *seedFlag*1_000_003 + uint64(c)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), seed
}

// sortedSample returns k distinct elements of pool, sorted.
func sortedSample(rng *rand.Rand, pool []string, k int) []string {
	perm := rng.Perm(len(pool))[:k]
	out := make([]string, k)
	for i, j := range perm {
		out[i] = pool[j]
	}
	slices.Sort(out)
	return out
}

// randomWeights returns p weights in [1, maxw].
func randomWeights(rng *rand.Rand, p int, maxw uint32) []uint32 {
	w := make([]uint32, p)
	for i := range w {
		w[i] = 1 + rng.Uint32N(maxw)
	}
	return w
}

// arbitraryCase returns a random valid input whose Previous is arbitrary:
// a mix of members, departed IDs and "".
func arbitraryCase(rng *rand.Rand) Input {
	pool := ids("m", 2+rng.IntN(14))
	n := rng.IntN(len(pool) + 1)
	in := Input{
		Members:    sortedSample(rng, pool, n),
		Partitions: ids("p", rng.IntN(80)),
	}
	if rng.IntN(2) == 0 {
		in.Weights = randomWeights(rng, len(in.Partitions), 1+rng.Uint32N(20))
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

// change describes a membership change applied to a steady state.
type change struct {
	name string
	next func(rng *rand.Rand, members []string) []string
}

// changes are the membership changes the stickiness bounds are stated for.
var changes = []change{
	{"+1", func(_ *rand.Rand, m []string) []string { return addMembers(m, 1) }},
	{"-1", func(rng *rand.Rand, m []string) []string { return removeMembers(rng, m, 1) }},
	{"+10%", func(_ *rand.Rand, m []string) []string { return addMembers(m, max(1, len(m)/10)) }},
	{"-10%", func(rng *rand.Rand, m []string) []string { return removeMembers(rng, m, max(1, len(m)/10)) }},
	{"replace1", func(rng *rand.Rand, m []string) []string { return addMembers(removeMembers(rng, m, 1), 1) }},
}

// addMembers returns members plus k new IDs, sorted.
func addMembers(members []string, k int) []string {
	out := slices.Clone(members)
	for i := range k {
		out = append(out, fmt.Sprintf("new-%d-%04d", len(members), i))
	}
	slices.Sort(out)
	return out
}

// removeMembers returns members minus k random ones (keeping at least one).
func removeMembers(rng *rand.Rand, members []string, k int) []string {
	k = min(k, len(members)-1)
	return sortedSample(rng, members, len(members)-k)
}

// steady returns the assignment s makes from empty for members, as Previous.
func steady(t testing.TB, s Strategy, members, partitions []string, weights []uint32) []string {
	t.Helper()
	out, err := s.Assign(Input{Members: members, Partitions: partitions, Weights: weights})
	if err != nil {
		t.Fatal(err)
	}
	// Settle: one more round from its own output changes nothing for a
	// sticky strategy, but make sure the state is a fixed point anyway.
	out2, err := s.Assign(Input{Members: members, Partitions: partitions, Weights: weights, Previous: ownerNames(out, members)})
	if err != nil {
		t.Fatal(err)
	}
	return ownerNames(out2, members)
}

// spread returns max/avg and min/avg of loads.
func spread(loads []uint64) (hi, lo float64) {
	var total, mx uint64
	mn := ^uint64(0)
	for _, l := range loads {
		total += l
		mx = max(mx, l)
		mn = min(mn, l)
	}
	avg := float64(total) / float64(len(loads))
	return float64(mx) / avg, float64(mn) / avg
}
