package strategy

import (
	"fmt"
	"math"
	"math/bits"
	"sort"
	"strings"
)

// NamePlacement is the name of [Placement].
const NamePlacement = "placement"

// DefaultPlacementEpsilon is the load slack of [Placement] when its Epsilon
// field is zero.
const DefaultPlacementEpsilon = 0.1

// MaxCapacity bounds an entry of Input.Capacities.
const MaxCapacity = 1 << 16

// Class is a constraint class: the placement rule shared by every partition
// whose Input.ClassOf entry names it. Labels are "key=value" strings.
type Class struct {
	// Require is the hard constraint: a partition of the class may be owned
	// only by a member that carries every one of these labels. Empty: any
	// member.
	Require []string
	// Prefer is the soft affinity: among the members that satisfy Require,
	// prefer those that also carry every one of these labels, while any such
	// member is live and has room within the balance bound. Empty: no
	// preference.
	Prefer []string
}

// String renders the class as "region=eu prefer zone=a" (or "any").
func (c Class) String() string {
	var b strings.Builder
	b.WriteString(strings.Join(c.Require, ","))
	if b.Len() == 0 {
		b.WriteString("any")
	}
	if len(c.Prefer) > 0 {
		b.WriteString(" prefer ")
		b.WriteString(strings.Join(c.Prefer, ","))
	}
	return b.String()
}

// ValidLabel reports whether l is a well-formed "key=value" label: a
// non-empty key without '=' followed by '=' and a value (possibly empty).
func ValidLabel(l string) bool {
	k := strings.IndexByte(l, '=')
	return k > 0
}

// hasAll reports whether labels (any order) holds every label of want.
func hasAll(labels, want []string) bool {
	for _, w := range want {
		found := false
		for _, l := range labels {
			if l == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// validatePlacement checks the placement fields of in (Labels, Capacities,
// Classes, ClassOf); part of [Input.Validate].
func (in Input) validatePlacement() error {
	if in.Labels != nil {
		if len(in.Labels) != len(in.Members) {
			return fmt.Errorf("%w: len(Labels) = %d, want len(Members) = %d (or nil)", ErrInvalidInput, len(in.Labels), len(in.Members))
		}
		for m, ls := range in.Labels {
			for j, l := range ls {
				if !ValidLabel(l) {
					return fmt.Errorf("%w: Labels[%d][%d] (member %q) = %q, want key=value", ErrInvalidInput, m, j, in.Members[m], l)
				}
			}
		}
	}
	if in.Capacities != nil {
		if len(in.Capacities) != len(in.Members) {
			return fmt.Errorf("%w: len(Capacities) = %d, want len(Members) = %d (or nil)", ErrInvalidInput, len(in.Capacities), len(in.Members))
		}
		for m, c := range in.Capacities {
			if c == 0 || c > MaxCapacity {
				return fmt.Errorf("%w: Capacities[%d] (member %q) = %d, want 1 to %d", ErrInvalidInput, m, in.Members[m], c, MaxCapacity)
			}
		}
	}
	for c, cl := range in.Classes {
		for j, l := range cl.Require {
			if !ValidLabel(l) {
				return fmt.Errorf("%w: Classes[%d].Require[%d] = %q, want key=value", ErrInvalidInput, c, j, l)
			}
		}
		for j, l := range cl.Prefer {
			if !ValidLabel(l) {
				return fmt.Errorf("%w: Classes[%d].Prefer[%d] = %q, want key=value", ErrInvalidInput, c, j, l)
			}
		}
	}
	if in.Frozen != nil && len(in.Frozen) != len(in.Members) {
		return fmt.Errorf("%w: len(Frozen) = %d, want len(Members) = %d (or nil)", ErrInvalidInput, len(in.Frozen), len(in.Members))
	}
	if in.ClassOf != nil {
		if len(in.ClassOf) != len(in.Partitions) {
			return fmt.Errorf("%w: len(ClassOf) = %d, want len(Partitions) = %d (or nil)", ErrInvalidInput, len(in.ClassOf), len(in.Partitions))
		}
		for i, c := range in.ClassOf {
			if int(c) >= len(in.Classes) {
				return fmt.Errorf("%w: ClassOf[%d] (partition %q) = %d, want < len(Classes) = %d", ErrInvalidInput, i, in.Partitions[i], c, len(in.Classes))
			}
		}
	}
	return nil
}

// frozen reports whether member m is frozen (see Input.Frozen).
func (in Input) frozen(m int32) bool { return in.Frozen != nil && in.Frozen[m] }

// capacity returns member m's capacity (1 when Capacities is nil).
func (in Input) capacity(m int) uint64 {
	if in.Capacities == nil {
		return 1
	}
	return uint64(in.Capacities[m])
}

// classOf returns partition i's class, or -1 for "no class" (any member, no
// preference) when ClassOf is nil.
func (in Input) classOf(i int) int {
	if in.ClassOf == nil {
		return -1
	}
	return int(in.ClassOf[i])
}

// class returns class c (the unconstrained class for c < 0).
func (in Input) class(c int) Class {
	if c < 0 {
		return Class{}
	}
	return in.Classes[c]
}

// Eligible returns the indices of the members that satisfy class c's Require
// (every member for c < 0), ascending. in must be valid.
func (in Input) Eligible(c int) []int32 {
	cl := in.class(c)
	var out []int32
	for m := range in.Members {
		var ls []string
		if in.Labels != nil {
			ls = in.Labels[m]
		}
		if hasAll(ls, cl.Require) {
			out = append(out, int32(m))
		}
	}
	return out
}

// Preferred reports whether member m satisfies class c's Prefer (false when
// the class has no preference). in must be valid.
func (in Input) Preferred(c, m int) bool {
	cl := in.class(c)
	if len(cl.Prefer) == 0 {
		return false
	}
	var ls []string
	if in.Labels != nil {
		ls = in.Labels[m]
	}
	return hasAll(ls, cl.Prefer) && hasAll(ls, cl.Require)
}

// Placement is the placement-aware strategy: members carry labels and a
// capacity, partitions carry a constraint class (a hard Require and a soft
// Prefer, see [Class]) and a weight. It is sticky, like
// [WeightedConsistentHash], but balances each constraint class separately, in
// proportion to capacity.
//
// # Classes, shares and bounds
//
// Each class c is placed on its eligible members E (live members carrying
// every Require label). A class with no eligible member is unplaceable: its
// partitions get -1 (unowned) and [Unplaceable] lists them. With W the
// class's total weight, C the total capacity of E, wmax the class's heaviest
// partition and ε = Epsilon (default 0.1), member m of E with capacity cap
// has the share s = W·cap/C and the bounds
//
//	upper = max(ceil((1+ε)·s), ceil(s) + wmax − 1)
//	lower = floor((1−ε)·s)
//
// except that in a class with affinity (Prefer non-empty and some member of E
// carrying it, the preferred set P) members outside P have lower = 0: the
// class's load is allowed to lean towards P. A member's load in a class is
// the weight of the class's partitions it owns; its total load is the sum
// over classes. Because every class is spread in proportion to capacity,
// so is the total, across zones and within each zone (a zone is just a
// label; nothing here depends on its key).
//
// # The rule, per class
//
// Partitions of the class are processed heaviest first, ties by index.
//
//  1. Keep. A partition stays with its previous owner if that owner is in E
//     (live, and still satisfying Require) and stays within upper.
//  2. Place. Every other partition (new, departed owner, broken constraint,
//     shed) goes, with affinity, to the first member of P that can take it
//     within upper; if none can, or without affinity, to the first member
//     of E (which always has room within upper). "First" is: a member below
//     lower before the others, then the lowest load per capacity unit in
//     the class, then the lowest load per capacity unit over the classes
//     placed before, then the lower index.
//  3. Return. With affinity, each kept partition on a member outside P moves
//     to the member of P with the lowest load per capacity unit that can
//     still take it within upper ("moved back: affinity").
//  4. Raise. While a member of E is below lower, it takes partitions from
//     the member with the highest load per capacity unit that can give one
//     no heavier than the receiver's deficit without falling below its own
//     lower: that member's heaviest such partition. Receivers are served in
//     index order.
//
// # Guarantees (the bound table in the package documentation)
//
//   - Hard constraints: a partition is only ever owned by a member of E;
//     with E empty it is unowned.
//   - Balance: every class load <= upper, always. Every class load >= lower
//     when weights are unit (or fine enough, as for
//     [WeightedConsistentHash]); so for unit weights max/mean load per
//     capacity unit within a class is at most (1+ε) plus one partition.
//   - Affinity: a partition of a class with affinity is owned outside P
//     only if no member of P could take it within upper when it was placed
//     or returned.
//   - Moves: a partition moves only if its owner left, it breaks its
//     constraint, its owner is over upper, it returns to P, or it is raised
//     to a member below lower. [PlacementMinimum] is the weight any
//     assignment within these bounds must move; the property tests hold
//     moved weight to it.
//
// Frozen members (Input.Frozen: closing for a restart, cordoned) keep
// every previous partition their labels allow, even above upper, and
// receive none; they count in the eligible set and the shares, so freezing
// and thawing a member moves nothing else. Upper then holds for the other
// members unless the frozen ones hold less than their share.
//
// Losing a zone moves only the partitions its members owned (the others'
// shares grow, so nobody sheds), spread by step 2 over the remaining
// eligible members in proportion to capacity. When the zone comes back,
// partitions whose class prefers it return by step 3 up to the zone's upper
// bounds, and other classes raise the returning members to lower by step 4;
// nothing else moves.
//
// The zero value is ready to use.
type Placement struct {
	// Epsilon is the load slack ε; 0 means DefaultPlacementEpsilon (0.1).
	// It must be in [0, MaxEpsilon] (rounded to parts per million).
	Epsilon float64
}

// Name returns "placement".
func (Placement) Name() string { return NamePlacement }

// placementPPM resolves the Epsilon field to parts per million.
func placementPPM(eps float64) (uint64, error) {
	if eps == 0 {
		eps = DefaultPlacementEpsilon
	}
	if math.IsNaN(eps) || eps < 0 || eps > MaxEpsilon {
		return 0, fmt.Errorf("%w: Placement.Epsilon = %v, want 0 (default %v) to %v", ErrInvalidInput, eps, DefaultPlacementEpsilon, MaxEpsilon)
	}
	return uint64(math.Round(eps * ppmScale)), nil
}

// Unplaceable returns the indices of the partitions whose class has no
// eligible member in in (ascending). With no members at all, every partition
// is unplaceable. in must be valid.
func Unplaceable(in Input) []int {
	if len(in.Members) == 0 {
		out := make([]int, len(in.Partitions))
		for i := range out {
			out[i] = i
		}
		return out
	}
	none := make([]bool, max(len(in.Classes), 1))
	for c := range in.Classes {
		none[c] = len(in.Eligible(c)) == 0
	}
	var out []int
	if in.ClassOf == nil {
		return nil
	}
	for i, c := range in.ClassOf {
		if none[c] {
			out = append(out, i)
		}
	}
	return out
}

// Assign implements [Strategy].
func (s Placement) Assign(in Input) ([]int32, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	ppm, err := placementPPM(s.Epsilon)
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
	owner, _ := previousOwners(in)
	pl := newPlacer(in, out, owner, ppm)
	groups := pl.byClass()
	for _, c := range classOrder(in, groups) {
		pl.assignClass(c-1, groups[c])
	}
	return out, nil
}

// classOrder returns the order in which Assign places the groups of
// byClass: the classes with the fewest eligible members first, among
// those the classes with a preference first (ties: class index), so that the freer classes, placed later, can even out the total
// load per capacity unit that the constrained ones left uneven.
func classOrder(in Input, groups [][]int32) []int {
	order := make([]int, len(groups))
	size := make([]int, len(groups)) // 2 × eligible members, +1 without affinity
	for g := range groups {
		order[g] = g
		if len(groups[g]) > 0 {
			size[g] = 2 * len(in.Eligible(g-1))
			if len(in.class(g-1).Prefer) == 0 {
				size[g]++
			}
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return size[order[a]] < size[order[b]] })
	return order
}

// placer is the working state of one Placement.Assign.
type placer struct {
	in    Input
	out   []int32
	owner []int32
	ppm   uint64

	// tot is each member's load over the classes placed so far; it breaks
	// ties between members equally loaded within a class, so that small
	// classes do not all land on the lowest index.
	tot []uint64
	// wmin is the lightest partition of the class being placed.
	wmin uint64

	// Per class, reset for the class's members after each class.
	elig  []bool
	pref  []bool
	load  []uint64
	upper []uint64
	lower []uint64
	pos   []int // position of each member in the class's eligible list
}

func newPlacer(in Input, out, owner []int32, ppm uint64) *placer {
	n := len(in.Members)
	return &placer{
		in: in, out: out, owner: owner, ppm: ppm,
		tot:   make([]uint64, n),
		elig:  make([]bool, n),
		pref:  make([]bool, n),
		load:  make([]uint64, n),
		upper: make([]uint64, n),
		lower: make([]uint64, n),
		pos:   make([]int, n),
	}
}

func (pl *placer) w(i int32) uint64 { return weightOf(pl.in.Weights, int(i)) }

// byClass returns the partitions of each class in processing order
// (heaviest first, ties by index): entry 0 is "no class" (ClassOf nil),
// entry c+1 is class c.
func (pl *placer) byClass() [][]int32 {
	in := pl.in
	p := len(in.Partitions)
	order := weightOrder(in.Weights)
	at := func(k int) int32 {
		if order == nil {
			return int32(k)
		}
		return order[k]
	}
	if in.ClassOf == nil {
		all := make([]int32, p)
		for k := range all {
			all[k] = at(k)
		}
		return [][]int32{all}
	}
	k := len(in.Classes) + 1
	start := make([]int, k+1)
	for _, c := range in.ClassOf {
		start[c+2]++
	}
	for c := 1; c <= k; c++ {
		start[c] += start[c-1]
	}
	items := make([]int32, p)
	head := make([]int, k)
	copy(head, start[:k])
	for j := range p {
		i := at(j)
		c := in.ClassOf[i] + 1
		items[head[c]] = i
		head[c]++
	}
	groups := make([][]int32, k)
	for c := range groups {
		groups[c] = items[start[c]:start[c+1]:start[c+1]]
	}
	return groups
}

// entryLess reports whether heap entry a is less loaded than b: by total
// load (over the classes placed before plus the class being placed) per
// capacity unit, then by class load per capacity unit, then by index.
//
// The float keys only speed the comparison up: division rounds
// monotonically, so keys that differ order the entries exactly as the
// ratios do, and equal keys fall back to the exact comparison. The result
// is the exact order on every platform.
func entryLess(a, b *heapEntry) bool {
	if a.ftot != b.ftot {
		return a.ftot < b.ftot
	}
	if c := cmpRatio(a.tot+a.load, a.cap, b.tot+b.load, b.cap); c != 0 {
		return c < 0
	}
	if a.fload != b.fload {
		return a.fload < b.fload
	}
	if c := cmpRatio(a.load, a.cap, b.load, b.cap); c != 0 {
		return c < 0
	}
	return a.m < b.m
}

// cmpRatio compares la/ca with lb/cb exactly.
func cmpRatio(la, ca, lb, cb uint64) int {
	h1, l1 := bits.Mul64(la, cb)
	h2, l2 := bits.Mul64(lb, ca)
	switch {
	case h1 != h2:
		if h1 < h2 {
			return -1
		}
		return 1
	case l1 < l2:
		return -1
	case l1 > l2:
		return 1
	}
	return 0
}

// classBounds sets upper and lower for the members of e, a class of total
// weight total and heaviest partition wmax; affinity says whether members
// outside the preferred set get lower = 0.
func (pl *placer) classBounds(e []int32, total, wmax uint64, affinity bool) {
	var capTotal uint64
	for _, m := range e {
		capTotal += pl.in.capacity(int(m))
	}
	den := capTotal * ppmScale
	for _, m := range e {
		c := pl.in.capacity(int(m))
		share := mulDiv(total, c, capTotal, true)
		up := mulDiv(total, c*(ppmScale+pl.ppm), den, true)
		pl.upper[m] = max(up, share+wmax-1)
		pl.lower[m] = 0
		if pl.ppm < ppmScale && (!affinity || pl.pref[m]) {
			pl.lower[m] = mulDiv(total, c*(ppmScale-pl.ppm), den, false)
		}
	}
}

// assignClass places the partitions of class c (-1: no class), given in
// processing order.
func (pl *placer) assignClass(c int, parts []int32) {
	if len(parts) == 0 {
		return
	}
	in := pl.in
	e := in.Eligible(c)
	if len(e) == 0 {
		for _, i := range parts {
			pl.out[i] = -1
		}
		return
	}
	var prefSet, open []int32 // open: the members that may receive (not frozen)
	affinity := false
	for _, m := range e {
		pl.elig[m] = true
		if in.Preferred(c, int(m)) {
			pl.pref[m], affinity = true, true
			if !in.frozen(m) {
				prefSet = append(prefSet, m)
			}
		}
		if !in.frozen(m) {
			open = append(open, m)
		}
	}
	defer func() {
		for _, m := range e {
			pl.tot[m] += pl.load[m]
			pl.elig[m], pl.pref[m], pl.load[m] = false, false, 0
		}
	}()
	var total, wmax uint64
	for _, i := range parts {
		w := pl.w(i)
		total += w
		wmax = max(wmax, w)
	}
	pl.wmin = pl.w(parts[len(parts)-1]) // parts are heaviest first
	pl.classBounds(e, total, wmax, affinity)

	// 1. Keep.
	var orphans, offPref []int32
	for _, i := range parts {
		o, w := pl.owner[i], pl.w(i)
		if o >= 0 && pl.elig[o] && (in.frozen(o) || pl.load[o]+w <= pl.upper[o]) {
			pl.out[i] = o
			pl.load[o] += w
			if affinity && !pl.pref[o] && !in.frozen(o) {
				offPref = append(offPref, i)
			}
			continue
		}
		pl.out[i] = -1
		orphans = append(orphans, i)
	}

	// 2. Place.
	var prefHeap *memberHeap
	if affinity {
		prefHeap = &memberHeap{pl: pl}
		for _, m := range prefSet {
			prefHeap.push(m)
		}
	}
	if len(orphans) > 0 && len(open) == 0 {
		return // every eligible member is frozen: the orphans stay unowned
	}
	if len(orphans) > 0 {
		all := &memberHeap{pl: pl}
		for _, m := range open {
			all.push(m)
		}
		for _, i := range orphans {
			w := pl.w(i)
			m := int32(-1)
			if affinity {
				m = pl.takeRoom(prefHeap, w)
			}
			if m < 0 {
				// The member with the least class load per capacity unit
				// always has room (see classBounds), so takeRoom finds one
				// unless frozen members hold less than their share.
				if m = pl.takeRoom(all, w); m < 0 {
					m = pl.leastLoaded(open)
					pl.load[m] += w
				}
			} // else m's entry in all is stale now; pop refreshes it
			pl.out[i] = m
		}
	}

	// 3. Return.
	for _, i := range offPref {
		w := pl.w(i)
		m := pl.takeRoom(prefHeap, w)
		if m < 0 {
			continue
		}
		pl.load[pl.out[i]] -= w
		pl.out[i] = m
	}

	// 4. Raise.
	pl.raise(e, parts)
}

// leastLoaded returns the member of ms with the least class load per
// capacity unit (ties: lower index), room or not.
func (pl *placer) leastLoaded(ms []int32) int32 {
	best := ms[0]
	for _, m := range ms[1:] {
		if cmpRatio(pl.load[m], pl.in.capacity(int(m)), pl.load[best], pl.in.capacity(int(best))) < 0 {
			best = m
		}
	}
	return best
}

// takeRoom returns the member of h with the lowest load per capacity unit
// that can take weight w within upper, adds w to its load and keeps h in
// order; -1 if no member of h can take it. A member that has no room left
// even for the class's lightest partition leaves h for good (loads in h
// only grow while the class is placed).
func (pl *placer) takeRoom(h *memberHeap, w uint64) int32 {
	var aside []int32
	found := int32(-1)
	for h.len() > 0 {
		m := h.e[0].m
		if h.e[0].load != pl.load[m] {
			h.fixTop() // stale key: refresh it and look again
			continue
		}
		if pl.load[m]+w <= pl.upper[m] {
			found = m
			pl.load[m] += w
			h.fixTop()
			break
		}
		h.popEntry()
		if pl.load[m]+pl.wmin <= pl.upper[m] {
			aside = append(aside, m)
		}
	}
	for _, m := range aside {
		h.push(m)
	}
	return found
}

// raise moves partitions of the class to members of e below lower; step 4.
func (pl *placer) raise(e []int32, parts []int32) {
	var receivers []int32
	for _, m := range e {
		if pl.load[m] < pl.lower[m] && !pl.in.frozen(m) {
			receivers = append(receivers, m)
		}
	}
	if len(receivers) == 0 {
		return
	}
	// Each member's partitions of the class in processing order, as ranges
	// of one array indexed through the position of the member in e.
	pos := pl.pos
	for k, m := range e {
		pos[m] = k
	}
	start := make([]int, len(e)+1)
	for _, i := range parts {
		start[pos[pl.out[i]]+1]++
	}
	for k := 1; k <= len(e); k++ {
		start[k] += start[k-1]
	}
	items := make([]int32, len(parts))
	head := make([]int, len(e))
	copy(head, start[:len(e)])
	for _, i := range parts {
		k := pos[pl.out[i]]
		items[head[k]] = i
		head[k]++
	}
	copy(head, start[:len(e)])

	donors := &memberHeap{pl: pl, max: true}
	for _, m := range e {
		if pl.load[m] > pl.lower[m] && !pl.in.frozen(m) {
			donors.push(m)
		}
	}
	var aside []int32
	for _, u := range receivers {
		for pl.load[u] < pl.lower[u] {
			deficit := pl.lower[u] - pl.load[u]
			from, moving := int32(-1), int32(-1)
			aside = aside[:0]
			for donors.len() > 0 {
				d := donors.pop()
				k := pos[d]
				// Skip entries that are no longer d's (none move in to a
				// donor, so a scan from head finds d's current partitions).
				for head[k] < start[k+1] && pl.out[items[head[k]]] != d {
					head[k]++
				}
				for j := head[k]; j < start[k+1]; j++ {
					i := items[j]
					if pl.out[i] != d {
						continue
					}
					if w := pl.w(i); w <= deficit && pl.load[d]-w >= pl.lower[d] {
						from, moving = d, i
						break
					}
				}
				if moving >= 0 {
					break
				}
				aside = append(aside, d)
			}
			for _, d := range aside {
				donors.push(d)
			}
			if moving < 0 {
				break
			}
			w := pl.w(moving)
			pl.out[moving] = u
			pl.load[from] -= w
			pl.load[u] += w
			if pl.load[from] > pl.lower[from] {
				donors.push(from)
			}
		}
	}
}

// memberHeap is a binary min-heap of members keyed by the load they had
// when pushed: members below their lower bound first, then by load per
// capacity unit (see entryLess), or (max set) by the greatest load per
// capacity unit. Loads change under it: pop re-pushes an entry
// whose key is stale, so a heap whose members' loads only move against its
// order (up for a min-heap) always pops the true least loaded member.
type memberHeap struct {
	pl  *placer
	max bool
	e   []heapEntry
}

// heapEntry is a member's key as of its push: its class load, its load
// over the classes placed before, its capacity and whether it was below
// its lower bound.
type heapEntry struct {
	load, tot, cap uint64
	ftot, fload    float64 // (tot+load)/cap and load/cap, rounded
	m              int32
	below          bool
}

func (h *memberHeap) less(a, b *heapEntry) bool {
	if h.max {
		a, b = b, a
	} else if a.below != b.below {
		return a.below // members below lower first: filling them saves a raise
	}
	return entryLess(a, b)
}

func (h *memberHeap) len() int { return len(h.e) }

// entry returns m's current key.
func (h *memberHeap) entry(m int32) heapEntry {
	pl := h.pl
	load, tot, c := pl.load[m], pl.tot[m], pl.in.capacity(int(m))
	return heapEntry{
		load: load, tot: tot, cap: c, m: m, below: load < pl.lower[m],
		ftot: float64(tot+load) / float64(c), fload: float64(load) / float64(c),
	}
}

// fixTop refreshes the key of the top entry, whose load has moved against
// the heap's order, and restores the order.
func (h *memberHeap) fixTop() {
	h.e[0] = h.entry(h.e[0].m)
	h.down(0)
}

func (h *memberHeap) push(m int32) {
	h.e = append(h.e, h.entry(m))
	for i := len(h.e) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h.less(&h.e[i], &h.e[parent]) {
			break
		}
		h.e[i], h.e[parent] = h.e[parent], h.e[i]
		i = parent
	}
}

func (h *memberHeap) popEntry() heapEntry {
	top := h.e[0]
	last := len(h.e) - 1
	h.e[0] = h.e[last]
	h.e = h.e[:last]
	h.down(0)
	return top
}

// down sifts entry i down to its place.
func (h *memberHeap) down(i int) {
	n := len(h.e)
	for {
		l, best := 2*i+1, i
		if l < n && h.less(&h.e[l], &h.e[best]) {
			best = l
		}
		if r := l + 1; r < n && h.less(&h.e[r], &h.e[best]) {
			best = r
		}
		if best == i {
			return
		}
		h.e[i], h.e[best] = h.e[best], h.e[i]
		i = best
	}
}

// pop removes and returns the member with the least (or, for max, the
// greatest) current load per capacity unit.
func (h *memberHeap) pop() int32 {
	for {
		top := h.popEntry()
		if top.load == h.pl.load[top.m] {
			return top.m
		}
		h.push(top.m)
	}
}

// PlacementMinimum is the counterpart of [MinimumMoves] for [Placement]
// with Epsilon eps: a lower bound on the weight any assignment within
// Placement's bounds must move away from in.Previous. It is the minimum per
// constraint class, summed. For a class with eligible members E, loads taken
// from Previous (members of E only), F the weight of the class's previously
// owned partitions whose owner is not in E (it left, or no longer satisfies
// Require: they are forced to move) and U the weight of its unowned ones:
//
//	over    = Σ over E max(0, load − upper)   must leave over-loaded members
//	deficit = Σ over E max(0, lower − load)   must reach under-loaded members
//	minimum = F + max(over, deficit − F − U, 0)
//
// A class with no eligible member contributes the weight of its previously
// owned partitions (they become unowned). Partitions that return to their
// preferred members (affinity) are not part of the minimum: Placement moves
// them by its own rule, and its bound is stated as moved − returned against
// this minimum. As for [ExcessWeight], the bound ignores granularity. eps is
// interpreted as Placement.Epsilon (0 means DefaultPlacementEpsilon); an
// invalid eps panics. in must be valid ([Input.Validate]).
func PlacementMinimum(in Input, eps float64) uint64 {
	ppm, err := placementPPM(eps)
	if err != nil {
		panic(err)
	}
	if in.Previous == nil || len(in.Partitions) == 0 {
		return 0
	}
	owner, _ := previousOwners(in)
	if len(in.Members) == 0 {
		return MovedWeight(in.Previous, noMembers(len(in.Partitions)), nil, in.Weights)
	}
	pl := newPlacer(in, nil, owner, ppm)
	var minimum uint64
	for c, parts := range pl.byClass() {
		minimum += pl.classMinimum(c-1, parts)
	}
	return minimum
}

// classMinimum is PlacementMinimum's term for class c.
func (pl *placer) classMinimum(c int, parts []int32) uint64 {
	if len(parts) == 0 {
		return 0
	}
	e := pl.in.Eligible(c)
	var forced, unowned, total, wmax uint64
	for _, i := range parts {
		w := pl.w(i)
		total += w
		wmax = max(wmax, w)
	}
	if len(e) == 0 {
		for _, i := range parts {
			if pl.owner[i] != -1 {
				forced += pl.w(i)
			}
		}
		return forced
	}
	affinity := false
	for _, m := range e {
		pl.elig[m] = true
		if pl.in.Preferred(c, int(m)) {
			pl.pref[m], affinity = true, true
		}
	}
	pl.classBounds(e, total, wmax, affinity)
	for _, i := range parts {
		o, w := pl.owner[i], pl.w(i)
		switch {
		case o == -1:
			unowned += w
		case o >= 0 && pl.elig[o]:
			pl.load[o] += w
		default:
			forced += w
		}
	}
	var over, deficit uint64
	for _, m := range e {
		if l := pl.load[m]; l > pl.upper[m] {
			over += l - pl.upper[m]
		} else if l < pl.lower[m] {
			deficit += pl.lower[m] - l
		}
		pl.elig[m], pl.pref[m], pl.load[m] = false, false, 0
	}
	x := over
	if deficit > forced+unowned {
		x = max(x, deficit-forced-unowned)
	}
	return forced + x
}
