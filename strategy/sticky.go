package strategy

import (
	"cmp"
	"errors"
	"slices"
)

// Sticky is the recommended strategy: it balances partition counts exactly
// (every member owns floor(P/N) or ceil(P/N) partitions) while moving the
// fewest partitions any such assignment can move, [MinimumMoves].
//
// The rule, in order:
//
//  1. Targets. With P partitions and N members, the P mod N members that
//     own the most partitions today (ties: lower member ID first) get
//     ceil(P/N); every other member gets floor(P/N).
//  2. Keep. Each member keeps up to its target of the partitions it already
//     owns. A member that owns more than its target keeps first the
//     partitions that plain consistent hashing (the ring of [ConsistentHash]
//     with DefaultVirtualNodes) would give it, then the rest in index order;
//     it releases the remainder.
//  3. Place. Orphans (unowned partitions, partitions of departed members,
//     released partitions) are placed in index order, each on the first
//     member clockwise from the partition's ring position that is still
//     below its target: consistent hashing with the targets as capacities,
//     so placement is spread and stable.
//
// Every partition that moves is a departed member's or a surplus one, and a
// member that keeps a partition never gives it away, so the number of moves
// equals [MinimumMoves]. When nothing changed (Previous is Sticky's own
// earlier output for the same members and partitions) nothing moves.
//
// Sticky ignores Weights: it balances counts only. Use
// [WeightedConsistentHash] when partitions differ in cost.
//
// The zero value is ready to use.
type Sticky struct{}

// Name returns "sticky".
func (Sticky) Name() string { return NameSticky }

// errInternal reports a broken internal invariant (a bug in this package).
var errInternal = errors.New("strategy: internal error: no open member left")

// Assign implements [Strategy].
func (Sticky) Assign(in Input) ([]int32, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	n, p := len(in.Members), len(in.Partitions)
	if n == 0 {
		return noMembers(p), nil
	}
	out := make([]int32, p)
	if p == 0 {
		return out, nil
	}
	owner, count := previousOwners(in)
	target := countTargets(count, p)

	var r *ring
	for m := range count {
		if count[m] > target[m] {
			r = newRing(in.Members, DefaultVirtualNodes)
			break
		}
	}

	// Keep: pass A keeps the partitions of members within target, and the
	// ring-preferred partitions of members over target; pass B fills those
	// members up to target with their remaining partitions in index order.
	const undecided = -3
	kept := make([]int, n)
	orphans := 0
	for i, o := range owner {
		switch {
		case o < 0:
			out[i] = -1
			orphans++
		case count[o] <= target[o]:
			out[i] = o
			kept[o]++
		case kept[o] < target[o] && r.home(in.Partitions[i]) == o:
			out[i] = o
			kept[o]++
		default:
			out[i] = undecided
		}
	}
	if r != nil {
		for i, o := range out {
			if o != undecided {
				continue
			}
			if m := owner[i]; kept[m] < target[m] {
				out[i] = m
				kept[m]++
			} else {
				out[i] = -1
				orphans++
			}
		}
	}
	if orphans == 0 {
		return out, nil
	}

	// Place: bounded-load consistent hashing with the targets as capacities.
	if r == nil {
		r = newRing(in.Members, DefaultVirtualNodes)
	}
	load := kept
	open := newOpenSet(r, r.memberPoints(), func(m int32) bool { return load[m] < target[m] })
	for i, o := range out {
		if o != -1 {
			continue
		}
		j := open.first(r.lookup(hashString(in.Partitions[i])))
		if j < 0 {
			return nil, errInternal
		}
		m := r.owner[j]
		out[i] = m
		if load[m]++; load[m] == target[m] {
			open.close(m)
		}
	}
	return out, nil
}

// countTargets returns the count targets for members owning count[m]
// partitions today, p partitions in all (len(count) > 0): floor(p/n) each,
// plus one for the p mod n members owning the most (ties: lower index).
func countTargets(count []int, p int) []int {
	n := len(count)
	q, rem := p/n, p%n
	target := make([]int, n)
	for m := range target {
		target[m] = q
	}
	if rem == 0 {
		return target
	}
	order := make([]int32, n)
	for m := range order {
		order[m] = int32(m)
	}
	slices.SortFunc(order, func(a, b int32) int {
		if c := cmp.Compare(count[b], count[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	for _, m := range order[:rem] {
		target[m]++
	}
	return target
}
