package decider

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/strategy"
)

// Sentinel errors of Decide and the commands. Test for them with errors.Is.
var (
	// ErrNotLeader: the command is the leader's and the caller is not the
	// derived leader.
	ErrNotLeader = errors.New("decider: not the leader")
	// ErrNotMember: the named incarnation is not a member of the group.
	ErrNotMember = errors.New("decider: not a member")
	// ErrInvalidPartition: a partition ID, weight or index is invalid.
	ErrInvalidPartition = errors.New("decider: invalid partition")
	// ErrNoWindow: there is no window to close.
	ErrNoWindow = errors.New("decider: no window open")
	// ErrNotClosing: the incarnation is not closing for a restart.
	ErrNotClosing = errors.New("decider: not closing")
	// ErrInvalidCommand: the command is malformed (a missing nonce, an
	// unknown operator action, ...).
	ErrInvalidCommand = errors.New("decider: invalid command")
	// ErrBusy: a multi-part event is being folded (Snapshot, Genesis).
	ErrBusy = errors.New("decider: multi-part event in progress")
)

// DefaultStrategy is used when the declaration names none.
const DefaultStrategy = "sticky"

// Decide computes the leader's next decision on the state s as folded up to
// s.LastSeq, or nil when nothing needs to move. It never mutates s. The
// result must be appended fenced on s.LastSeq (its BasedOn).
//
// Rules: partitions with a move in flight, or owned by a closing (restart
// grace) or cordoned member, stay where they are. While a window is open or
// rebalancing is paused, only partitions that must move are assigned: unowned
// ones and those of leaving or draining members (an emergency is handled at
// once, with no window). Otherwise the declared strategy computes the whole
// assignment and the decision is the difference.
func Decide(s *State, self string, selfInc uint64) (*events.AssignmentDecided, error) {
	if !s.IsLeader(self, selfInc) {
		return nil, ErrNotLeader
	}
	// A multi-part event in progress does not stop the leader: parts are
	// published as one atomic batch, so if the rest is on the log the
	// decision's fence (the last folded sequence) refuses it, and if a part
	// stands alone (a confused process published it) the decision lands and
	// the fold drops the part. Waiting for it would stall the group.
	if len(s.Partitions) == 0 || (s.Window && s.Generation == 0) {
		// Nothing to place, or the cold-start window is still gathering.
		return nil, nil
	}
	name := s.Strategy
	if name == "" {
		name = DefaultStrategy
	}
	strat, err := strategy.ByName(name)
	if err != nil {
		return nil, fmt.Errorf("decider: declared strategy: %w", err)
	}
	var eligible []string
	for _, id := range s.Order {
		if m := s.Members[id]; m.Eligible() {
			eligible = append(eligible, id)
		}
	}
	slices.Sort(eligible)
	if len(eligible) == 0 {
		return nil, nil
	}
	restricted := s.Window || s.Paused
	// Under "placement" the members whose partitions are held join the
	// input as frozen members instead (placement.go).
	frozen := name == strategy.NamePlacement
	if frozen {
		eligible = s.withFrozen(eligible)
	}

	// Partitions the strategy may place, and their previous owners.
	// A partition in flight counts as its target's (so the strategy sees
	// the load it will have) but is not moved again until it lands.
	held := func(o *Ownership) bool {
		if frozen || o.Owner == "" || o.Target != "" {
			return false
		}
		m := s.Members[o.Owner]
		return m != nil && (m.Closing || (m.Cordoned && !m.Draining && m.Live()))
	}
	mustMove := func(o *Ownership) bool {
		if o.Owner == "" {
			return true
		}
		m := s.Members[o.Owner]
		return m == nil || m.Leaving || m.Draining
	}
	n := len(s.Partitions)
	idx := make([]uint32, 0, n)
	for i := range s.Owners {
		if !held(&s.Owners[i]) {
			idx = append(idx, uint32(i))
		}
	}
	in := strategy.Input{Members: eligible}
	if len(idx) == n {
		in.Partitions = s.Partitions
		in.Weights = s.Weights
		in.Previous = make([]string, n)
		for i := range s.Owners {
			in.Previous[i] = effectiveOwner(&s.Owners[i])
		}
	} else {
		in.Partitions = make([]string, len(idx))
		in.Previous = make([]string, len(idx))
		if s.Weights != nil {
			in.Weights = make([]uint32, len(idx))
		}
		for k, i := range idx {
			in.Partitions[k] = s.Partitions[i]
			in.Previous[k] = effectiveOwner(&s.Owners[i])
			if s.Weights != nil {
				in.Weights[k] = s.Weights[i]
			}
		}
	}
	s.placementInput(&in, idx, len(idx) == n)
	res, err := strat.Assign(in)
	if err != nil {
		return nil, fmt.Errorf("decider: strategy %s: %w", name, err)
	}
	type key struct {
		from    string
		fromInc uint64
		to      string
	}
	groups := map[key][]uint32{}
	emergency := false
	for k, i := range idx {
		o := &s.Owners[i]
		if res[k] < 0 {
			continue
		}
		to := eligible[res[k]]
		if to == o.Owner || o.Target != "" {
			continue
		}
		if restricted && !mustMove(o) {
			continue
		}
		if o.Owner == "" {
			emergency = true
		}
		kk := key{from: o.Owner, fromInc: o.Inc, to: to}
		groups[kk] = append(groups[kk], i)
	}
	if len(groups) == 0 {
		return nil, nil
	}
	keys := make([]key, 0, len(groups))
	//parti:unordered collects the keys, sorted below
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.from, b.from), cmp.Compare(a.fromInc, b.fromInc), cmp.Compare(a.to, b.to))
	})
	d := &events.AssignmentDecided{
		Generation: s.Generation + 1,
		BasedOn:    s.LastSeq,
		Leader:     self,
		LeaderInc:  selfInc,
		Strategy:   name,
	}
	switch {
	case s.Generation == 0:
		d.Reason = events.DecideColdStart
	case emergency:
		d.Reason = events.DecideEmergency
	default:
		d.Reason = events.DecideRebalance
	}
	for _, k := range keys {
		d.Moves = append(d.Moves, events.Move{
			Parts:   events.RangesOf(groups[k]),
			From:    k.from,
			FromInc: k.fromInc,
			To:      k.to,
			ToInc:   s.Members[k.to].Incarnation,
		})
	}
	return d, nil
}

// SplitDecision splits d into parts of at most maxRanges range pairs each, to
// be published as one atomic batch (fenced on the first part). A decision
// that fits is returned as is.
func SplitDecision(d *events.AssignmentDecided, maxRanges int) []*events.AssignmentDecided {
	if maxRanges < 1 {
		maxRanges = 1
	}
	total := 0
	for _, m := range d.Moves {
		total += len(m.Parts) / 2
	}
	if total <= maxRanges {
		return []*events.AssignmentDecided{d}
	}
	var out []*events.AssignmentDecided
	cur := *d
	cur.Moves = nil
	room := maxRanges
	flush := func() {
		c := cur
		out = append(out, &c)
		cur.Moves = nil
		room = maxRanges
	}
	for _, m := range d.Moves {
		r := m.Parts
		for len(r) > 0 {
			if room == 0 {
				flush()
			}
			take := min(room, len(r)/2)
			mm := m
			mm.Parts = r[:2*take]
			cur.Moves = append(cur.Moves, mm)
			r = r[2*take:]
			room -= take
		}
	}
	if len(cur.Moves) > 0 {
		flush()
	}
	for i, p := range out {
		p.Part, p.Parts = i, len(out)
	}
	return out
}

// effectiveOwner is where a partition will be once its move in flight lands.
func effectiveOwner(o *Ownership) string {
	if o.Target != "" {
		return o.Target
	}
	return o.Owner
}
