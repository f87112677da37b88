package strategy

import "fmt"

// Moves returns how many partitions changed owner between prev (owner IDs,
// as in Input.Previous) and next (indices into members, as Assign returns):
// partition i counts when prev[i] is not "" and next[i] is not that member
// (including next[i] == -1). A partition with no previous owner ("") is
// placed, not moved, and does not count. prev may be nil (0 moves);
// otherwise len(prev) must equal len(next), or Moves panics.
func Moves(prev []string, next []int32, members []string) int {
	if prev == nil {
		return 0
	}
	mustSameLen("Moves", len(prev), len(next))
	moves := 0
	for i, id := range prev {
		if id == "" {
			continue
		}
		if o := next[i]; o < 0 || members[o] != id {
			moves++
		}
	}
	return moves
}

// MovedWeight is [Moves] counted in weight: the total weight of the
// partitions that changed owner (weights nil: each weighs 1).
func MovedWeight(prev []string, next []int32, members []string, weights []uint32) uint64 {
	if prev == nil {
		return 0
	}
	mustSameLen("MovedWeight", len(prev), len(next))
	var moved uint64
	for i, id := range prev {
		if id == "" {
			continue
		}
		if o := next[i]; o < 0 || members[o] != id {
			moved += weightOf(weights, i)
		}
	}
	return moved
}

// MinimumMoves returns the fewest partitions that any assignment balancing
// counts (every member owning floor(P/N) or ceil(P/N)) must move away from
// in.Previous. Give the ceil(P/N) targets to the P mod N members that own
// the most today (ties: lower member ID) and floor(P/N) to the rest; then
// the minimum is
//
//	Σ over members max(0, owned − target) + partitions of departed members
//
// where a departed member is a previous owner not in in.Members; unowned
// partitions ("") do not count. Giving the larger targets to the largest
// owners minimises the sum, so no balanced assignment moves fewer. With no
// members every previously owned partition counts. in must be valid
// ([Input.Validate]); MinimumMoves does not check.
func MinimumMoves(in Input) int {
	if in.Previous == nil {
		return 0
	}
	owner, count := previousOwners(in)
	moves := 0
	for _, o := range owner {
		if o == -2 {
			moves++
		}
	}
	if len(in.Members) == 0 {
		return moves
	}
	target := countTargets(count, len(in.Partitions))
	for m, c := range count {
		moves += max(0, c-target[m])
	}
	return moves
}

// ExcessWeight is the weighted counterpart of [MinimumMoves] for
// [WeightedConsistentHash] with Epsilon eps: a lower bound on the weight any
// assignment within that strategy's bounds must move away from in.Previous.
// With loads taken from Previous (members only), D the weight of departed
// members' partitions and U the weight of unowned ones,
//
//	over    = Σ max(0, load − upper)   must leave over-loaded members
//	deficit = Σ max(0, lower − load)   must reach under-loaded members
//	ExcessWeight = D + max(over, deficit − D − U, 0)
//
// D always moves; besides it, at least over must move between remaining
// members, and so must whatever part of the deficit the orphans (D + U)
// cannot fill. When no assignment reaches lower everywhere (coarse weights;
// see WeightedConsistentHash), the deficit term overstates and the strategy
// may move less. The bound ignores granularity (a member 1 over upper may
// have to shed a partition of weight 100), so on coarse weights the true
// minimum can be larger. eps is interpreted as WeightedConsistentHash.Epsilon (0 means
// DefaultEpsilon); an invalid eps panics. in must be valid
// ([Input.Validate]).
func ExcessWeight(in Input, eps float64) uint64 {
	ppm, err := epsilonPPM(eps)
	if err != nil {
		panic(err)
	}
	if in.Previous == nil {
		return 0
	}
	owner, _ := previousOwners(in)
	load := make([]uint64, len(in.Members))
	var departed, unowned uint64
	for i, o := range owner {
		w := weightOf(in.Weights, i)
		switch {
		case o >= 0:
			load[o] += w
		case o == -2:
			departed += w
		default:
			unowned += w
		}
	}
	if len(in.Members) == 0 {
		return departed
	}
	total, maxw, _ := weightStats(in.Weights, len(in.Partitions))
	lower, upper := loadBounds(total, len(in.Members), maxw, ppm)
	var over, deficit uint64
	for _, l := range load {
		if l > upper {
			over += l - upper
		}
		if l < lower {
			deficit += lower - l
		}
	}
	x := over
	if orphans := departed + unowned; deficit > orphans {
		x = max(x, deficit-orphans)
	}
	return departed + x
}

// Loads returns each member's load under next: the number of partitions it
// owns (weights nil) or their total weight. Entries of -1 are skipped.
// len(weights) must be len(next) unless weights is nil, and every other entry
// of next must be below nMembers, or Loads panics.
func Loads(next []int32, weights []uint32, nMembers int) []uint64 {
	if weights != nil {
		mustSameLen("Loads", len(weights), len(next))
	}
	loads := make([]uint64, nMembers)
	for i, o := range next {
		if o >= 0 {
			loads[o] += weightOf(weights, i)
		}
	}
	return loads
}

func weightOf(weights []uint32, i int) uint64 {
	if weights == nil {
		return 1
	}
	return uint64(weights[i])
}

func mustSameLen(fn string, a, b int) {
	if a != b {
		panic(fmt.Sprintf("strategy: %s: slice lengths differ: %d and %d", fn, a, b))
	}
}
