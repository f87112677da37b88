package strategy

import (
	"math/bits"
	"sort"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// ring is a consistent-hash ring: every member contributes vnodes points,
// point v of member m sitting at xxhash64(Members[m] + "#" + decimal(v)).
// Points are sorted by (hash, member, vnode), so even a full 64-bit collision
// orders deterministically. A partition sits at xxhash64(partition ID) and
// its owner on the plain ring is the first point clockwise at or after it,
// wrapping past the largest hash to the smallest.
type ring struct {
	hash   []uint64 // sorted point hashes
	owner  []int32  // member index of each point
	id     []int32  // point id m*vnodes+v of each point
	table  []int32  // table[b] = first point whose top bits are >= b; len 1<<tbits + 1
	shift  uint     // 64 - tbits
	vnodes int
	n      int // members
}

// newRing builds the ring for members (at least one) with vnodes points each.
//
// Sorting is a bucket sort on the top bits of the hash (about one point per
// bucket, since xxhash spreads them evenly) followed by a sort within each
// bucket; the bucket boundaries are kept as the lookup table, so a lookup is
// one table read and a scan of about one point.
func newRing(members []string, vnodes int) *ring {
	n := len(members)
	total := n * vnodes
	keys := make([]uint64, total)
	buf := make([]byte, 0, 64)
	for m, id := range members {
		buf = append(buf[:0], id...)
		buf = append(buf, '#')
		base := len(buf)
		for v := 0; v < vnodes; v++ {
			buf = strconv.AppendInt(buf[:base], int64(v), 10)
			keys[m*vnodes+v] = xxhash.Sum64(buf)
		}
	}

	tbits := bits.Len(uint(total))
	if tbits > 20 {
		tbits = 20
	}
	shift := uint(64 - tbits)
	buckets := 1 << tbits
	// Counting sort by bucket: table[b] first counts bucket b, then holds
	// the end of bucket b; scattering from the last point backwards moves
	// each table[b] down to the start of bucket b and keeps points of equal
	// bucket in (member, vnode) order.
	table := make([]int32, buckets+1)
	for _, k := range keys {
		table[k>>shift]++
	}
	for b := 1; b < buckets; b++ {
		table[b] += table[b-1]
	}
	table[buckets] = int32(total)
	r := &ring{
		hash:   make([]uint64, total),
		owner:  make([]int32, total),
		id:     make([]int32, total),
		table:  table,
		shift:  shift,
		vnodes: vnodes,
		n:      n,
	}
	for m := n - 1; m >= 0; m-- {
		for v := vnodes - 1; v >= 0; v-- {
			j := m*vnodes + v
			k := keys[j]
			b := k >> shift
			table[b]--
			at := table[b]
			r.hash[at] = k
			r.id[at] = int32(j)
			r.owner[at] = int32(m)
		}
	}
	for b := 0; b < buckets; b++ {
		if lo, hi := int(table[b]), int(table[b+1]); hi-lo > 1 {
			r.sortRange(lo, hi)
		}
	}
	return r
}

// sortRange sorts points [lo, hi) by (hash, id).
func (r *ring) sortRange(lo, hi int) {
	if hi-lo > 48 { // only with pathological hash clustering
		sort.Sort(pointSorter{r.hash[lo:hi], r.id[lo:hi], r.owner[lo:hi]})
		return
	}
	for i := lo + 1; i < hi; i++ {
		h, id, o := r.hash[i], r.id[i], r.owner[i]
		j := i
		for j > lo && (r.hash[j-1] > h || (r.hash[j-1] == h && r.id[j-1] > id)) {
			r.hash[j], r.id[j], r.owner[j] = r.hash[j-1], r.id[j-1], r.owner[j-1]
			j--
		}
		r.hash[j], r.id[j], r.owner[j] = h, id, o
	}
}

type pointSorter struct {
	hash  []uint64
	id    []int32
	owner []int32
}

func (s pointSorter) Len() int { return len(s.hash) }
func (s pointSorter) Less(i, j int) bool {
	return s.hash[i] < s.hash[j] || (s.hash[i] == s.hash[j] && s.id[i] < s.id[j])
}
func (s pointSorter) Swap(i, j int) {
	s.hash[i], s.hash[j] = s.hash[j], s.hash[i]
	s.id[i], s.id[j] = s.id[j], s.id[i]
	s.owner[i], s.owner[j] = s.owner[j], s.owner[i]
}

// lookup returns the index of the first point at or after h, wrapping.
func (r *ring) lookup(h uint64) int32 {
	b := h >> r.shift
	i, end := r.table[b], r.table[b+1]
	for i < end && r.hash[i] < h {
		i++
	}
	if int(i) == len(r.hash) {
		i = 0
	}
	return i
}

// home returns the member the plain ring gives partition ID p.
func (r *ring) home(p string) int32 {
	return r.owner[r.lookup(hashString(p))]
}

// memberPoints returns, for each member m, the ring indices of its points in
// pts[m*vnodes : (m+1)*vnodes].
func (r *ring) memberPoints() []int32 {
	pts := make([]int32, len(r.id))
	for i, j := range r.id {
		pts[j] = int32(i)
	}
	return pts
}

// openSet is the set of ring points whose members are still open (may take
// more partitions), as a union-find "next open point" structure: next[i] == i
// for an open point, and following next from any index reaches the first open
// point at or after it (or the sentinel len(next)-1). Closing is permanent,
// so a walk over closed points costs amortised near-constant time.
type openSet struct {
	next []int32
	pts  []int32 // from ring.memberPoints
	v    int
}

// newOpenSet returns the set of points whose member satisfies open.
func newOpenSet(r *ring, pts []int32, open func(m int32) bool) *openSet {
	total := len(r.owner)
	s := &openSet{next: make([]int32, total+1), pts: pts, v: r.vnodes}
	isOpen := make([]bool, r.n)
	for m := range isOpen {
		isOpen[m] = open(int32(m))
	}
	for i, m := range r.owner {
		if isOpen[m] {
			s.next[i] = int32(i)
		} else {
			s.next[i] = int32(i + 1)
		}
	}
	s.next[total] = int32(total)
	return s
}

// find returns the first open point at or after i, or the sentinel.
func (s *openSet) find(i int32) int32 {
	next := s.next
	for next[i] != i {
		next[i] = next[next[i]] // path halving
		i = next[i]
	}
	return i
}

// first returns the first open point clockwise from i (inclusive), or -1 if
// no point is open.
func (s *openSet) first(i int32) int32 {
	end := int32(len(s.next) - 1)
	j := s.find(i)
	if j == end {
		j = s.find(0)
		if j == end {
			return -1
		}
	}
	return j
}

// close closes every point of member m.
func (s *openSet) close(m int32) {
	for _, p := range s.pts[int(m)*s.v : (int(m)+1)*s.v] {
		if s.next[p] == p {
			s.next[p] = p + 1
		}
	}
}

// hashString is the ring position of a partition ID.
func hashString(s string) uint64 { return xxhash.Sum64String(s) }
