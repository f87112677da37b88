package replay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/parti-io/parti/decider"
)

// ErrPointsReversed is wrapped by Diff's error when the later point comes
// first.
var ErrPointsReversed = errors.New("give the earlier point first")

// DiffReport is what changed between two points of a history.
type DiffReport struct {
	Group  string `json:"group"`
	Source string `json:"source"`
	// RequestedA and RequestedB are the points asked for; A and B the last
	// log records folded at each.
	RequestedA string   `json:"requested_a"`
	RequestedB string   `json:"requested_b"`
	A          Position `json:"a"`
	B          Position `json:"b"`
	// Side-by-side summaries of the two states.
	Before Summary `json:"before"`
	After  Summary `json:"after"`
	// Joined and Left list member incarnations (id/inc) present only in B,
	// or only in A. A restart shows as one left and one joined.
	Joined []string `json:"joined"`
	Left   []string `json:"left"`
	// StatusChanged lists incarnations present at both points whose
	// status (live, leaving, closing, cordoned, draining) changed.
	StatusChanged []StatusChange `json:"status_changed"`
	// Added and Dropped list partition IDs declared only at B, or only at A.
	Added   []string `json:"added"`
	Dropped []string `json:"dropped"`
	// Moves lists every partition declared at both points whose owner
	// (member and incarnation) differs, in partition order; MovesByPair
	// counts them by (from, to).
	Moves       []PartitionMove `json:"moves"`
	MovesByPair []PairCount     `json:"moves_by_pair"`
	// Restarted lists partitions whose owner at B is a newer incarnation
	// of the same member ID as at A: a restart took them over without a
	// move (README's "zero moves"), so they are not in Moves.
	Restarted []PartitionMove `json:"restarted"`
}

// Summary is the gist of a state.
type Summary struct {
	Phase       string `json:"phase"`
	Leader      string `json:"leader,omitempty"`
	Generation  uint64 `json:"generation"`
	Protocol    uint16 `json:"protocol"`
	DeclVersion uint64 `json:"decl_version"`
	Strategy    string `json:"strategy"`
	Members     int    `json:"members"`
	Partitions  int    `json:"partitions"`
	Unowned     int    `json:"unowned"`
	InFlight    int    `json:"in_flight"`
	Window      bool   `json:"window"`
	Paused      bool   `json:"paused"`
}

// StatusChange is a member whose status changed.
type StatusChange struct {
	Member string `json:"member"`
	From   string `json:"from"`
	To     string `json:"to"`
}

// PartitionMove is a partition whose owner changed ("" for unowned).
type PartitionMove struct {
	Partition string `json:"partition"`
	From      string `json:"from"`
	To        string `json:"to"`
}

// PairCount counts moves from one owner to another.
type PairCount struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Count int    `json:"count"`
}

func summarize(s *decider.State) Summary {
	sum := Summary{
		Phase: s.Phase().String(), Generation: s.Generation, Protocol: s.Protocol,
		DeclVersion: s.DeclVersion, Strategy: s.Strategy, Members: len(s.Members),
		Partitions: len(s.Partitions), Unowned: s.Unowned(), InFlight: s.InFlight(),
		Window: s.Window, Paused: s.Paused,
	}
	if l, ok := s.Leader(); ok {
		sum.Leader = MemberRef(l.ID, l.Incarnation)
	}
	return sum
}

// Diff compares the states at a and b. a must not come after b (for two
// sequences; times are taken as given).
func Diff(ctx context.Context, src Source, a, b Point) (*DiffReport, error) {
	if a.Seq > 0 && b.Seq > 0 && a.Seq > b.Seq {
		return nil, fmt.Errorf("replay: diff: sequence %d comes after %d: %w", a.Seq, b.Seq, ErrPointsReversed)
	}
	if !a.Time.IsZero() && !b.Time.IsZero() && a.Time.After(b.Time) {
		return nil, fmt.Errorf("replay: diff: %s comes after %s: %w", a, b, ErrPointsReversed)
	}
	_, caps, err := foldTo(ctx, src, a, b)
	if err != nil {
		return nil, err
	}
	sa, sb := caps[0].state, caps[1].state
	d := &DiffReport{
		Group: src.Subjects().Group, Source: src.String(),
		RequestedA: a.String(), RequestedB: b.String(),
		A: caps[0].pos, B: caps[1].pos,
		Before: summarize(sa), After: summarize(sb),
		Joined: []string{}, Left: []string{}, StatusChanged: []StatusChange{},
		Added: []string{}, Dropped: []string{}, Moves: []PartitionMove{}, MovesByPair: []PairCount{},
		Restarted: []PartitionMove{},
	}
	for _, id := range sb.Order {
		m := sb.Members[id]
		if old := sa.Members[id]; old == nil || old.Incarnation != m.Incarnation {
			d.Joined = append(d.Joined, MemberRef(id, m.Incarnation))
		} else if x, y := memberStatus(old), memberStatus(m); x != y {
			d.StatusChanged = append(d.StatusChanged, StatusChange{Member: MemberRef(id, m.Incarnation), From: x, To: y})
		}
	}
	for _, id := range sa.Order {
		m := sa.Members[id]
		if now := sb.Members[id]; now == nil || now.Incarnation != m.Incarnation {
			d.Left = append(d.Left, MemberRef(id, m.Incarnation))
		}
	}
	pairs := map[[2]string]int{}
	for i, id := range sb.Partitions {
		j, ok := sa.PartitionIndex(id)
		if !ok {
			d.Added = append(d.Added, id)
			continue
		}
		oa, ob := sa.Owners[j], sb.Owners[i]
		from, to := MemberRef(oa.Owner, oa.Inc), MemberRef(ob.Owner, ob.Inc)
		if from != to && oa.Owner != "" && oa.Owner == ob.Owner {
			d.Restarted = append(d.Restarted, PartitionMove{Partition: id, From: from, To: to})
			continue
		}
		if from != to {
			d.Moves = append(d.Moves, PartitionMove{Partition: id, From: from, To: to})
			pairs[[2]string{from, to}]++
		}
	}
	for _, id := range sa.Partitions {
		if _, ok := sb.PartitionIndex(id); !ok {
			d.Dropped = append(d.Dropped, id)
		}
	}
	for k, n := range pairs {
		d.MovesByPair = append(d.MovesByPair, PairCount{From: k[0], To: k[1], Count: n})
	}
	slices.SortFunc(d.MovesByPair, func(x, y PairCount) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.From, y.From), cmp.Compare(x.To, y.To))
	})
	return d, nil
}
