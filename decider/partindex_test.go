package decider

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestPartIndexAgreesWithAMap checks the bisected index against a map from
// ID to index over sorted, shuffled and duplicated sets, and for IDs that
// are not in them.
func TestPartIndexAgreesWithAMap(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		r := rand.New(rand.NewPCG(seed, 0))
		n := r.IntN(300)
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("p-%05d", i*3)
		}
		if r.IntN(2) == 0 {
			r.Shuffle(n, func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		}
		wantDup := -1
		if n > 1 && r.IntN(4) == 0 {
			i, j := r.IntN(n), r.IntN(n)
			if i != j {
				ids[j] = ids[i]
				wantDup = j
			}
		}
		x, dup := newPartIndex(ids)
		if (dup >= 0) != (wantDup >= 0) {
			t.Fatalf("seed %d: dup %d, want a duplicate: %v", seed, dup, wantDup >= 0)
		}
		if dup >= 0 {
			if seen := ids[dup]; seen != ids[wantDup] {
				t.Fatalf("seed %d: dup names %q, the duplicated ID is %q", seed, seen, ids[wantDup])
			}
			continue
		}
		m := map[string]uint32{}
		for i, id := range ids {
			m[id] = uint32(i)
		}
		if x.len() != n {
			t.Fatalf("seed %d: len %d, want %d", seed, x.len(), n)
		}
		for k := -1; k <= 3*n+1; k++ {
			id := fmt.Sprintf("p-%05d", k)
			got, ok := x.lookup(id)
			want, wantOK := m[id]
			if ok != wantOK || got != want {
				t.Fatalf("seed %d: lookup(%q) = %d, %v; want %d, %v", seed, id, got, ok, want, wantOK)
			}
		}
	}
}

// TestPartIndexSortedSetCostsNothing: a set declared sorted is searched in
// place.
func TestPartIndexSortedSetCostsNothing(t *testing.T) {
	x, dup := newPartIndex([]string{"a", "b", "c"})
	if dup != -1 || x.perm != nil {
		t.Fatalf("dup %d, perm %v: want -1 and no permutation", dup, x.perm)
	}
}
