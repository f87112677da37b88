package consumer

import (
	"fmt"
	"testing"
)

// Partitions at the same position are dealt over the consumers, not cut
// into ranges of neighbouring IDs; partitions further behind still share
// consumers with their neighbours in position.
func TestLayoutDealsPartitionsAtTheSamePosition(t *testing.T) {
	var parts []*part
	for i := range 8 {
		parts = append(parts, &part{id: fmt.Sprintf("p%d", i), covered: 10})
	}
	groups := layout(parts, 4)
	if len(groups) != 2 {
		t.Fatalf("%d consumers, want 2", len(groups))
	}
	want := [][]string{{"p0", "p2", "p4", "p6"}, {"p1", "p3", "p5", "p7"}}
	for g, ps := range groups {
		for i, p := range ps {
			if p.id != want[g][i] {
				t.Fatalf("consumer %d holds %v, want %v", g, ids(ps), want[g])
			}
		}
	}

	// Two behind, six ahead: the two behind stay together.
	parts = parts[:0]
	for i := range 8 {
		c := uint64(50)
		if i < 2 {
			c = 5
		}
		parts = append(parts, &part{id: fmt.Sprintf("p%d", i), covered: c})
	}
	groups = layout(parts, 4)
	if g := ids(groups[0]); g[0] != "p0" || g[1] != "p1" {
		t.Fatalf("first consumer %v, want p0 and p1 first", g)
	}
	seen := map[string]bool{}
	for _, ps := range groups {
		if len(ps) > 4 {
			t.Fatalf("a consumer holds %d partitions, more than 4", len(ps))
		}
		for _, p := range ps {
			if seen[p.id] {
				t.Fatalf("%s in two consumers", p.id)
			}
			seen[p.id] = true
		}
	}
	if len(seen) != 8 {
		t.Fatalf("%d partitions laid out, want 8", len(seen))
	}
	if layout(nil, 4) != nil || len(layout(parts[:3], 4)) != 1 {
		t.Fatal("fewer partitions than one consumer holds must give one consumer (none for none)")
	}
}

func ids(ps []*part) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.id)
	}
	return out
}
