package decider

import (
	"cmp"
	"slices"
)

// partIndex finds a partition's index in the declared set by its ID. It is
// the declared IDs' order sorted, searched by bisection: four bytes a
// partition (none when the set is declared sorted, the common case), where
// a map from ID to index costs about fifty, and every member folds the
// whole set. It never changes once built: a declaration or a snapshot
// builds a new one, so clones share it.
type partIndex struct {
	ids []string
	// perm holds the indexes of ids in ID order; nil when ids is sorted.
	perm []uint32
}

// newPartIndex indexes ids. dup is the index of a partition ID that occurs
// twice, or -1.
func newPartIndex(ids []string) (x partIndex, dup int) {
	x.ids = ids
	if slices.IsSorted(ids) {
		for i := 1; i < len(ids); i++ {
			if ids[i] == ids[i-1] {
				return x, i
			}
		}
		return x, -1
	}
	x.perm = make([]uint32, len(ids))
	for i := range x.perm {
		x.perm[i] = uint32(i)
	}
	slices.SortFunc(x.perm, func(a, b uint32) int { return cmp.Compare(ids[a], ids[b]) })
	for i := 1; i < len(x.perm); i++ {
		if ids[x.perm[i]] == ids[x.perm[i-1]] {
			return x, int(x.perm[i])
		}
	}
	return x, -1
}

// lookup returns the index of id.
func (x partIndex) lookup(id string) (uint32, bool) {
	if x.perm == nil {
		if i, ok := slices.BinarySearch(x.ids, id); ok {
			return uint32(i), true
		}
		return 0, false
	}
	i, ok := slices.BinarySearchFunc(x.perm, id, func(j uint32, id string) int { return cmp.Compare(x.ids[j], id) })
	if !ok {
		return 0, false
	}
	return x.perm[i], true
}

// len is the number of partitions indexed.
func (x partIndex) len() int { return len(x.ids) }
