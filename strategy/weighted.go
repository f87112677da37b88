package strategy

import (
	"cmp"
	"fmt"
	"math"
	"math/bits"
)

// DefaultEpsilon is the load slack of [WeightedConsistentHash] when its
// Epsilon field is zero.
const DefaultEpsilon = 0.25

// MaxEpsilon bounds an Epsilon field.
const MaxEpsilon = 1000

// ppmScale is the fixed-point scale of Epsilon: it is rounded to parts per
// million once, and everything after that is integer arithmetic, identical
// on every platform.
const ppmScale = 1_000_000

// WeightedConsistentHash is consistent hashing with bounded loads on
// partition weights, and sticky.
//
// With W the total weight, N members, avg = W/N and wmax the heaviest
// partition, every member's load is kept within
//
//	upper = max(ceil((1+ε)·W/N), floor(W/N) + wmax)
//
// and brought up to at least
//
//	lower = floor((1−ε)·W/N)   (0 when ε >= 1)
//
// where ε is Epsilon rounded to parts per million. The second term of upper
// makes the bound always achievable: a member with load > upper − w would
// carry more than the average, and they cannot all do so. The rule:
//
//  1. Order. Partitions are processed heaviest first, ties by index.
//  2. Keep. A partition stays with its previous owner (if still a member)
//     while that owner's load stays within upper.
//  3. Place. Every other partition (unowned, departed owner, or shed by an
//     owner over upper) walks the ring clockwise from its position and goes
//     to the first member below lower that can take it within upper (so a
//     newcomer gets its share from partitions that move anyway), or, if no
//     such member exists, to the first member that can take it within upper.
//  4. Raise. While some member is below lower, partitions move to it from
//     the most loaded member (ties: lower index) that has a partition no
//     heavier than the receiver's deficit and can give it without falling
//     below lower: its heaviest such partition (ties: lower index). If no
//     member has one, the lightest partition that fits (over all members
//     that could give without falling below lower or pushing the receiver
//     above upper; ties: more loaded member, then lower index), so the
//     receiver overshoots lower as little as possible. Members below lower
//     are served in index order, repeatedly, until no move is possible.
//
// Guarantees: every load <= upper, always. Every load >= lower whenever
// wmax <= floor(W/N) − lower + 1, which always holds for unit weights
// (Weights nil); with heavier partitions the lower bound is best effort (for
// example, two members and three partitions of weight 100 leave one member
// at 100 < lower = 112). Nothing moves when nothing changed (Previous is the
// strategy's own earlier output for the same input otherwise). Moves happen
// only to members below lower or away from members above upper or departed,
// so the moved weight stays close to [ExcessWeight] (equal to it for unit
// weights).
//
// The zero value is ready to use.
type WeightedConsistentHash struct {
	// VirtualNodes is the number of ring points per member; 0 means
	// DefaultVirtualNodes.
	VirtualNodes int
	// Epsilon is the load slack ε; 0 means DefaultEpsilon (0.25). Use a tiny
	// positive value (it is rounded to parts per million) for the tightest
	// bounds. It must be in [0, MaxEpsilon].
	Epsilon float64
}

// Name returns "weighted-consistent-hash".
func (WeightedConsistentHash) Name() string { return NameWeightedConsistentHash }

// Bounds returns the lower and upper load bounds (see the type's
// documentation) that Assign applies to in.
func (s WeightedConsistentHash) Bounds(in Input) (lower, upper uint64, err error) {
	if err := in.Validate(); err != nil {
		return 0, 0, err
	}
	ppm, err := epsilonPPM(s.Epsilon)
	if err != nil {
		return 0, 0, err
	}
	if len(in.Members) == 0 {
		return 0, 0, nil
	}
	total, maxw, _ := weightStats(in.Weights, len(in.Partitions))
	lower, upper = loadBounds(total, len(in.Members), maxw, ppm)
	return lower, upper, nil
}

// epsilonPPM resolves an Epsilon field to parts per million.
func epsilonPPM(eps float64) (uint64, error) {
	if eps == 0 {
		eps = DefaultEpsilon
	}
	if math.IsNaN(eps) || eps < 0 || eps > MaxEpsilon {
		return 0, fmt.Errorf("%w: WeightedConsistentHash.Epsilon = %v, want 0 (default %v) to %v", ErrInvalidInput, eps, DefaultEpsilon, MaxEpsilon)
	}
	return uint64(math.Round(eps * ppmScale)), nil
}

// weightStats returns the total, heaviest and lightest weight of p
// partitions (all 1 when weights is nil).
func weightStats(weights []uint32, p int) (total, maxw, minw uint64) {
	if weights == nil {
		if p == 0 {
			return 0, 0, 0
		}
		return uint64(p), 1, 1
	}
	minw = math.MaxUint64
	for _, w := range weights {
		total += uint64(w)
		maxw = max(maxw, uint64(w))
		minw = min(minw, uint64(w))
	}
	if p == 0 {
		minw = 0
	}
	return total, maxw, minw
}

// loadBounds returns lower = floor((1−ε)·total/n) and upper =
// max(ceil((1+ε)·total/n), floor(total/n) + maxw) for ε = ppm/1e6, n > 0.
func loadBounds(total uint64, n int, maxw, ppm uint64) (lower, upper uint64) {
	den := uint64(n) * ppmScale
	upper = mulDiv(total, ppmScale+ppm, den, true)
	upper = max(upper, total/uint64(n)+maxw)
	if ppm < ppmScale {
		lower = mulDiv(total, ppmScale-ppm, den, false)
	}
	return lower, upper
}

// lowerGuaranteed reports whether WeightedConsistentHash guarantees every
// load >= lower: wmax <= floor(W/N) − lower + 1.
func lowerGuaranteed(total uint64, n int, maxw, lower uint64) bool {
	return maxw+lower <= total/uint64(n)+1
}

// mulDiv returns a·b/d rounded down (or up), saturating at MaxUint64.
func mulDiv(a, b, d uint64, roundUp bool) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= d {
		return math.MaxUint64
	}
	q, rem := bits.Div64(hi, lo, d)
	if roundUp && rem != 0 {
		q++
	}
	return q
}

// weightOrder returns the partitions heaviest first, ties by index, or nil
// when that order is the index order (weights nil or all equal). It is a
// stable LSD radix sort on the bytes of the inverted weight, skipping bytes
// that are the same for every partition.
func weightOrder(weights []uint32) []int32 {
	if len(weights) == 0 {
		return nil
	}
	var or, and uint32 = 0, math.MaxUint32
	for _, w := range weights {
		or |= w
		and &= w
	}
	if or == and {
		return nil
	}
	order := make([]int32, len(weights))
	for i := range order {
		order[i] = int32(i)
	}
	tmp := make([]int32, len(weights))
	var count [257]int32
	for shift := uint(0); shift < 32; shift += 8 {
		if (or>>shift)&0xff == (and>>shift)&0xff {
			continue // this byte is the same everywhere
		}
		clear(count[:])
		for _, i := range order {
			count[((^weights[i]>>shift)&0xff)+1]++
		}
		for b := 1; b <= 256; b++ {
			count[b] += count[b-1]
		}
		for _, i := range order {
			d := (^weights[i] >> shift) & 0xff
			tmp[count[d]] = i
			count[d]++
		}
		order, tmp = tmp, order
	}
	return order
}

// Assign implements [Strategy].
func (s WeightedConsistentHash) Assign(in Input) ([]int32, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	v, err := virtualNodes("WeightedConsistentHash", s.VirtualNodes, len(in.Members))
	if err != nil {
		return nil, err
	}
	ppm, err := epsilonPPM(s.Epsilon)
	if err != nil {
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
	a := &weighted{
		in:      in,
		out:     out,
		weights: in.Weights,
		order:   weightOrder(in.Weights),
		load:    make([]uint64, n),
	}
	total, maxw, minw := weightStats(in.Weights, p)
	a.lower, a.upper = loadBounds(total, n, maxw, ppm)
	a.minw = minw

	owner, _ := previousOwners(in)
	if pending := a.keep(owner); pending > 0 {
		if err := a.place(v); err != nil {
			return nil, err
		}
	}
	a.raise()
	return out, nil
}

// weighted is the working state of one WeightedConsistentHash.Assign.
type weighted struct {
	in           Input
	out          []int32
	weights      []uint32
	order        []int32 // nil: index order
	load         []uint64
	lower, upper uint64
	minw         uint64
}

// w returns partition i's weight.
func (a *weighted) w(i int32) uint64 {
	if a.weights == nil {
		return 1
	}
	return uint64(a.weights[i])
}

// at returns the k-th partition in processing order.
func (a *weighted) at(k int) int32 {
	if a.order == nil {
		return int32(k)
	}
	return a.order[k]
}

// keep keeps each partition with its previous owner while that owner stays
// within upper; it marks the rest -1 and returns how many there are.
func (a *weighted) keep(owner []int32) int {
	pending := 0
	for k := range a.out {
		i := a.at(k)
		o, w := owner[i], a.w(i)
		if o >= 0 && a.load[o]+w <= a.upper {
			a.out[i] = o
			a.load[o] += w
		} else {
			a.out[i] = -1
			pending++
		}
	}
	return pending
}

// place places every partition marked -1, in processing order, by a ring
// walk that prefers members below lower.
func (a *weighted) place(vnodes int) error {
	r := newRing(a.in.Members, vnodes)
	pts := r.memberPoints()
	under := 0
	for _, l := range a.load {
		if l < a.lower {
			under++
		}
	}
	var below *openSet
	if under > 0 {
		below = newOpenSet(r, pts, func(m int32) bool { return a.load[m] < a.lower })
	}
	room := newOpenSet(r, pts, func(m int32) bool { return a.load[m]+a.minw <= a.upper })
	// Processing order is by weight, so hash in index order first: reading
	// the IDs in random order costs a cache miss or two per partition.
	var hashes []uint64
	if a.order != nil {
		hashes = make([]uint64, len(a.out))
		for i, o := range a.out {
			if o == -1 {
				hashes[i] = hashString(a.in.Partitions[i])
			}
		}
	}
	for k := range a.out {
		i := a.at(k)
		if a.out[i] != -1 {
			continue
		}
		w := a.w(i)
		var h uint64
		if hashes != nil {
			h = hashes[i]
		} else {
			h = hashString(a.in.Partitions[i])
		}
		start := r.lookup(h)
		m := int32(-1)
		if under > 0 {
			m = a.firstFit(below, r, start, w)
		}
		if m < 0 {
			m = a.firstFit(room, r, start, w)
		}
		if m < 0 {
			return errInternal
		}
		a.out[i] = m
		wasUnder := a.load[m] < a.lower
		a.load[m] += w
		if wasUnder && a.load[m] >= a.lower {
			below.close(m)
			under--
		}
		if a.load[m]+a.minw > a.upper {
			room.close(m)
		}
	}
	return nil
}

// firstFit walks the open points of s clockwise from start, one lap, and
// returns the first member that can take weight w within upper, or -1.
func (a *weighted) firstFit(s *openSet, r *ring, start int32, w uint64) int32 {
	end := int32(len(s.next) - 1)
	j := s.find(start)
	wrapped := false
	for {
		if j == end {
			if wrapped {
				return -1
			}
			wrapped = true
			j = s.find(0)
			continue
		}
		if wrapped && j >= start {
			return -1
		}
		if m := r.owner[j]; a.load[m]+w <= a.upper {
			return m
		}
		j = s.find(j + 1)
	}
}

// raise moves partitions to members below lower; see step 4 of the
// WeightedConsistentHash documentation.
func (a *weighted) raise() {
	n := len(a.load)
	anyUnder := false
	for _, l := range a.load {
		if l < a.lower {
			anyUnder = true
			break
		}
	}
	if !anyUnder {
		return
	}

	// Each member's partitions in processing order (heaviest first, ties by
	// index), as ranges of one backing array; moved-in partitions go to
	// extra. Entries whose partition has since moved away are stale and
	// skipped.
	start := make([]int32, n+1)
	for _, o := range a.out {
		start[o+1]++
	}
	for m := 1; m <= n; m++ {
		start[m] += start[m-1]
	}
	items := make([]int32, len(a.out))
	head := make([]int32, n)
	copy(head, start[:n])
	for k := range a.out {
		i := a.at(k)
		o := a.out[i]
		items[head[o]] = i
		head[o]++
	}
	copy(head, start[:n])
	l := &lists{a: a, items: items, head: head, end: start[1:], extra: make([][]int32, n)}

	h := &donorHeap{load: a.load}
	for m := range a.load {
		if a.load[m] > a.lower {
			h.push(int32(m))
		}
	}
	var skipped []int32
	for progress := true; progress; {
		progress = false
		for u := int32(0); int(u) < n; u++ {
			for a.load[u] < a.lower {
				// Pass 1: the first donor, in (load desc, index asc) order,
				// with a partition no heavier than the deficit.
				from, moving := int32(-1), int32(-1)
				skipped = skipped[:0]
				for len(h.m) > 0 {
					d := h.pop()
					lim, _ := a.limits(u, d)
					if i := l.heaviestAtMost(d, lim); i >= 0 {
						from, moving = d, i
						break
					}
					skipped = append(skipped, d)
				}
				// Pass 2: no donor has one; overshoot as little as possible:
				// the lightest partition that fits, over all donors (ties:
				// donor order, then index).
				if moving < 0 {
					bestW := uint64(0)
					for _, d := range skipped {
						_, maxW := a.limits(u, d)
						if i := l.lightestAtMost(d, maxW); i >= 0 && (moving < 0 || a.w(i) < bestW) {
							from, moving, bestW = d, i, a.w(i)
						}
					}
				}
				for _, d := range skipped {
					if d != from {
						h.push(d)
					}
				}
				if moving < 0 {
					break
				}
				w := a.w(moving)
				a.out[moving] = u
				a.load[from] -= w
				a.load[u] += w
				l.extra[u] = append(l.extra[u], moving)
				if a.load[from] > a.lower {
					h.push(from)
				}
				if a.load[u] > a.lower {
					h.push(u)
				}
				progress = true
			}
		}
	}
}

// limits returns, for a move from donor d to receiver u, the largest weight
// that stays within u's deficit and the largest weight that keeps d at or
// above lower and u at or below upper (lim <= maxW).
func (a *weighted) limits(u, d int32) (lim, maxW uint64) {
	maxW = min(a.upper-a.load[u], a.load[d]-a.lower)
	return min(a.lower-a.load[u], maxW), maxW
}

// lists holds each member's partitions for raise.
type lists struct {
	a     *weighted
	items []int32   // partitions grouped by owner, processing order
	head  []int32   // per member: first possibly current entry in items
	end   []int32   // per member: end of its range in items
	extra [][]int32 // per member: partitions moved in by raise
}

// heaviestAtMost returns d's heaviest current partition with weight <= lim
// (ties: lower index), or -1.
func (l *lists) heaviestAtMost(d int32, lim uint64) int32 {
	a := l.a
	k, end := l.head[d], l.end[d]
	for k < end && a.out[l.items[k]] != d {
		k++
	}
	l.head[d] = k

	best, bestW := int32(-1), uint64(0)
	for ; k < end; k++ { // heaviest first: the first fit is the heaviest
		i := l.items[k]
		if a.out[i] != d {
			continue
		}
		if w := a.w(i); w <= lim {
			best, bestW = i, w
			break
		}
	}
	for _, i := range l.extra[d] {
		if a.out[i] != d {
			continue
		}
		if w := a.w(i); w <= lim && (best < 0 || w > bestW || (w == bestW && i < best)) {
			best, bestW = i, w
		}
	}
	return best
}

// lightestAtMost returns d's lightest current partition with weight <= maxW
// (ties: lower index), or -1.
func (l *lists) lightestAtMost(d int32, maxW uint64) int32 {
	a := l.a
	best, bestW := int32(-1), uint64(0)
	consider := func(i int32) {
		if a.out[i] != d {
			return
		}
		if w := a.w(i); w <= maxW && (best < 0 || w < bestW || (w == bestW && i < best)) {
			best, bestW = i, w
		}
	}
	for k := l.head[d]; k < l.end[d]; k++ {
		consider(l.items[k])
	}
	for _, i := range l.extra[d] {
		consider(i)
	}
	return best
}

// donorHeap is a max-heap of members by (load descending, index ascending).
type donorHeap struct {
	m    []int32
	load []uint64
}

func (h *donorHeap) less(x, y int32) bool {
	if c := cmp.Compare(h.load[x], h.load[y]); c != 0 {
		return c > 0
	}
	return x < y
}

func (h *donorHeap) push(m int32) {
	h.m = append(h.m, m)
	i := len(h.m) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !h.less(h.m[i], h.m[parent]) {
			break
		}
		h.m[i], h.m[parent] = h.m[parent], h.m[i]
		i = parent
	}
}

func (h *donorHeap) pop() int32 {
	top := h.m[0]
	last := len(h.m) - 1
	h.m[0] = h.m[last]
	h.m = h.m[:last]
	for i := 0; ; {
		l, best := 2*i+1, i
		if l < last && h.less(h.m[l], h.m[best]) {
			best = l
		}
		if r := l + 1; r < last && h.less(h.m[r], h.m[best]) {
			best = r
		}
		if best == i {
			break
		}
		h.m[i], h.m[best] = h.m[best], h.m[i]
		i = best
	}
	return top
}
