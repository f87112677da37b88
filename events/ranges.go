package events

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Ranges is a set of partition indices as sorted, disjoint, non-adjacent
// inclusive ranges. On the wire it is a flat array [first, last, first, last,
// ...], small for the contiguous runs decisions usually move.
type Ranges []uint32

// RangesOf builds Ranges from indices in any order (duplicates allowed).
func RangesOf(indices []uint32) Ranges {
	if len(indices) == 0 {
		return nil
	}
	s := slices.Clone(indices)
	slices.Sort(s)
	var r Ranges
	first, last := s[0], s[0]
	for _, x := range s[1:] {
		switch {
		case x == last:
		case x == last+1:
			last = x
		default:
			r = append(r, first, last)
			first, last = x, x
		}
	}
	return append(r, first, last)
}

// Valid reports whether r is well-formed: even length, each first ≤ last,
// sorted, disjoint and non-adjacent, every index < n.
func (r Ranges) Valid(n int) error {
	if len(r)%2 != 0 {
		return fmt.Errorf("ranges: odd length %d", len(r))
	}
	for i := 0; i < len(r); i += 2 {
		if r[i] > r[i+1] {
			return fmt.Errorf("ranges: [%d,%d] is reversed", r[i], r[i+1])
		}
		if i > 0 && r[i] <= r[i-1]+1 {
			return fmt.Errorf("ranges: [%d,%d] overlaps or touches the previous range", r[i], r[i+1])
		}
		if uint64(r[i+1]) >= uint64(n) {
			return fmt.Errorf("ranges: index %d out of %d partitions", r[i+1], n)
		}
	}
	return nil
}

// Len returns the number of indices in r.
func (r Ranges) Len() int {
	n := 0
	for i := 0; i+1 < len(r); i += 2 {
		n += int(r[i+1]-r[i]) + 1
	}
	return n
}

// Each calls f for every index in r in ascending order; it stops early when f
// returns false.
func (r Ranges) Each(f func(uint32) bool) {
	for i := 0; i+1 < len(r); i += 2 {
		for x := uint64(r[i]); x <= uint64(r[i+1]); x++ {
			if !f(uint32(x)) {
				return
			}
		}
	}
}

// Indices returns every index in r.
func (r Ranges) Indices() []uint32 {
	out := make([]uint32, 0, r.Len())
	r.Each(func(x uint32) bool { out = append(out, x); return true })
	return out
}

// MarshalJSON writes the flat array (never null).
func (r Ranges) MarshalJSON() ([]byte, error) {
	if r == nil {
		return []byte("[]"), nil
	}
	return json.Marshal([]uint32(r))
}
