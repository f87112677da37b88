package strategy

// Naive, obviously-correct reference implementations: maps, linear scans,
// sort.Slice, no clever data structures. The fast strategies must agree
// with them exactly on random inputs.

import (
	"math"
	"math/big"
	"sort"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

type refPoint struct {
	hash   uint64
	member int
	vnode  int
}

type refRing []refPoint

func newRefRing(members []string, vnodes int) refRing {
	var r refRing
	for m, id := range members {
		for v := 0; v < vnodes; v++ {
			r = append(r, refPoint{xxhash.Sum64String(id + "#" + strconv.Itoa(v)), m, v})
		}
	}
	sort.Slice(r, func(i, j int) bool {
		if r[i].hash != r[j].hash {
			return r[i].hash < r[j].hash
		}
		if r[i].member != r[j].member {
			return r[i].member < r[j].member
		}
		return r[i].vnode < r[j].vnode
	})
	return r
}

// index returns the first point at or after h by linear scan, wrapping.
func (r refRing) index(h uint64) int {
	for i, pt := range r {
		if pt.hash >= h {
			return i
		}
	}
	return 0
}

func (r refRing) home(p string) int { return r[r.index(xxhash.Sum64String(p))].member }

func refAllMinus(p int) []int32 {
	out := make([]int32, p)
	for i := range out {
		out[i] = -1
	}
	return out
}

func refConsistentHash(in Input, vnodes int) []int32 {
	if len(in.Members) == 0 {
		return refAllMinus(len(in.Partitions))
	}
	r := newRefRing(in.Members, vnodes)
	out := make([]int32, len(in.Partitions))
	for i, p := range in.Partitions {
		out[i] = int32(r.home(p))
	}
	return out
}

// refOwners: -1 none, -2 departed.
func refOwners(in Input) []int {
	owner := make([]int, len(in.Partitions))
	for i := range owner {
		owner[i] = -1
		if in.Previous == nil || in.Previous[i] == "" {
			continue
		}
		owner[i] = -2
		for m, id := range in.Members {
			if id == in.Previous[i] {
				owner[i] = m
			}
		}
	}
	return owner
}

func refTargets(in Input, owner []int) []int {
	n, p := len(in.Members), len(in.Partitions)
	count := make([]int, n)
	for _, o := range owner {
		if o >= 0 {
			count[o]++
		}
	}
	order := make([]int, n)
	for m := range order {
		order[m] = m
	}
	sort.SliceStable(order, func(a, b int) bool { return count[order[a]] > count[order[b]] })
	target := make([]int, n)
	for k, m := range order {
		target[m] = p / n
		if k < p%n {
			target[m]++
		}
	}
	return target
}

func refSticky(in Input) []int32 {
	n, p := len(in.Members), len(in.Partitions)
	if n == 0 {
		return refAllMinus(p)
	}
	owner := refOwners(in)
	target := refTargets(in, owner)
	r := newRefRing(in.Members, DefaultVirtualNodes)
	out := refAllMinus(p)
	load := make([]int, n)
	for m := 0; m < n; m++ {
		var mine []int
		for i, o := range owner {
			if o == m {
				mine = append(mine, i)
			}
		}
		sort.SliceStable(mine, func(a, b int) bool {
			return r.home(in.Partitions[mine[a]]) == m && r.home(in.Partitions[mine[b]]) != m
		})
		for _, i := range mine[:min(len(mine), target[m])] {
			out[i] = int32(m)
			load[m]++
		}
	}
	for i := range out {
		if out[i] != -1 {
			continue
		}
		k := r.index(xxhash.Sum64String(in.Partitions[i]))
		for step := range r {
			if m := r[(k+step)%len(r)].member; load[m] < target[m] {
				out[i] = int32(m)
				load[m]++
				break
			}
		}
	}
	return out
}

func refWeight(in Input, i int) uint64 {
	if in.Weights == nil {
		return 1
	}
	return uint64(in.Weights[i])
}

// refBounds computes the bounds with exact rationals (math/big),
// independently of loadBounds' 128-bit integer code.
func refBounds(in Input, eps float64) (lower, upper uint64) {
	if eps == 0 {
		eps = DefaultEpsilon
	}
	e := big.NewRat(int64(math.Round(eps*1e6)), 1e6)
	var total, maxw uint64
	for i := range in.Partitions {
		total += refWeight(in, i)
		maxw = max(maxw, refWeight(in, i))
	}
	n := uint64(len(in.Members))
	avg := new(big.Rat).SetFrac(new(big.Int).SetUint64(total), new(big.Int).SetUint64(n))
	hi := new(big.Rat).Mul(avg, new(big.Rat).Add(big.NewRat(1, 1), e))
	q, r := new(big.Int).QuoRem(hi.Num(), hi.Denom(), new(big.Int))
	upper = q.Uint64()
	if r.Sign() != 0 {
		upper++
	}
	upper = max(upper, total/n+maxw)
	if lo := new(big.Rat).Mul(avg, new(big.Rat).Sub(big.NewRat(1, 1), e)); lo.Sign() > 0 {
		lower = new(big.Int).Quo(lo.Num(), lo.Denom()).Uint64()
	}
	return lower, upper
}

func refWeighted(in Input, vnodes int, eps float64) []int32 {
	n, p := len(in.Members), len(in.Partitions)
	if n == 0 {
		return refAllMinus(p)
	}
	lower, upper := refBounds(in, eps)
	order := make([]int, p)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return refWeight(in, order[a]) > refWeight(in, order[b]) })
	owner := refOwners(in)
	out := refAllMinus(p)
	load := make([]uint64, n)
	for _, i := range order {
		if o := owner[i]; o >= 0 && load[o]+refWeight(in, i) <= upper {
			out[i] = int32(o)
			load[o] += refWeight(in, i)
		}
	}
	r := newRefRing(in.Members, vnodes)
	for _, i := range order {
		if out[i] != -1 {
			continue
		}
		w := refWeight(in, i)
		k := r.index(xxhash.Sum64String(in.Partitions[i]))
		chosen := -1
		for step := range r {
			if m := r[(k+step)%len(r)].member; load[m] < lower && load[m]+w <= upper {
				chosen = m
				break
			}
		}
		if chosen < 0 {
			for step := range r {
				if m := r[(k+step)%len(r)].member; load[m]+w <= upper {
					chosen = m
					break
				}
			}
		}
		out[i] = int32(chosen)
		load[chosen] += w
	}
	for progress := true; progress; {
		progress = false
		for u := 0; u < n; u++ {
			for load[u] < lower {
				donors := []int{}
				for d := 0; d < n; d++ {
					if load[d] > lower {
						donors = append(donors, d)
					}
				}
				sort.SliceStable(donors, func(a, b int) bool { return load[donors[a]] > load[donors[b]] })
				from, best := -1, -1
				for _, d := range donors { // heaviest <= lim, lowest index, first donor that has one
					maxW := min(upper-load[u], load[d]-lower)
					lim := min(lower-load[u], maxW)
					for i := 0; i < p; i++ {
						if out[i] == int32(d) && refWeight(in, i) <= lim && (best < 0 || refWeight(in, i) > refWeight(in, best)) {
							from, best = d, i
						}
					}
					if best >= 0 {
						break
					}
				}
				if best < 0 {
					for _, d := range donors { // else the lightest <= maxW over all donors
						maxW := min(upper-load[u], load[d]-lower)
						for i := 0; i < p; i++ {
							if out[i] == int32(d) && refWeight(in, i) <= maxW && (best < 0 || refWeight(in, i) < refWeight(in, best)) {
								from, best = d, i
							}
						}
					}
				}
				moved := best >= 0
				if moved {
					out[best] = int32(u)
					load[from] -= refWeight(in, best)
					load[u] += refWeight(in, best)
				}
				if !moved {
					break
				}
				progress = true
			}
		}
	}
	return out
}
