package replay

import (
	"context"
	"fmt"
	"time"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
)

// Explanation is the ownership history of one partition.
type Explanation struct {
	Group     string `json:"group"`
	Source    string `json:"source"`
	Partition string `json:"partition"`
	// Index is the partition's index in the declared set at the end, or
	// -1 when it is not declared then.
	Index int64 `json:"index"`
	// Final is its ownership at the end.
	Final decider.Ownership `json:"final"`
	// End is the last log record read.
	End Position `json:"end"`
	// Changes lists, in log order, every record that changed the
	// partition's ownership, index or pending move, and every decision or
	// release that named it without effect (kind "rejected" or "ignored").
	Changes []Change `json:"changes"`
}

// Change is one step of a partition's history.
type Change struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Event is the event type's name.
	Event string `json:"event"`
	// Kind is what happened to the partition: declared, dropped,
	// reindexed, assigned, move-requested, moved, released, orphaned,
	// takeover, retargeted, move-cancelled, genesis, rejected, ignored or
	// changed.
	Kind string `json:"kind"`
	// Index is the partition's index after the record (-1: not declared).
	Index  int64             `json:"index"`
	Before decider.Ownership `json:"before"`
	After  decider.Ownership `json:"after"`
	// Why explains the step in words.
	Why string `json:"why"`
}

// Explain returns every change of partition's ownership, and why.
func Explain(ctx context.Context, src Source, partition string) (*Explanation, error) {
	if partition == "" {
		return nil, fmt.Errorf("replay: explain: empty partition ID")
	}
	f := newFolder(src.Subjects())
	ex := &Explanation{Group: src.Subjects().Group, Source: src.String(), Partition: partition, Index: -1}
	var lastLabels []string // the labels of its last owner (explain_placement.go)
	err := src.Scan(ctx, ScanOptions{LogOnly: true, SkipHeaders: true}, func(r *events.Record) error {
		if f.count(r) != events.SubjectLog {
			return nil
		}
		s := f.s
		bi, wasDecl := s.PartitionIndex(partition)
		var before decider.Ownership
		if wasDecl {
			before = s.Owners[bi]
		}
		mentioned := wasDecl && mentions(r.Event, bi, partition)
		if m := s.Members[before.Owner]; m != nil {
			lastLabels = m.Labels
		}
		out := f.apply(r)
		ai, isDecl := s.PartitionIndex(partition)
		var after decider.Ownership
		if isDecl {
			after = s.Owners[ai]
		}
		idx := int64(-1)
		if isDecl {
			idx = int64(ai)
		}
		if wasDecl != isDecl || bi != ai || before != after {
			kind, why := explainChange(r, out, before, after, wasDecl, isDecl, bi, ai)
			if isDecl {
				why += placementWhy(s, ai, kind, lastLabels, before, after)
			}
			ex.Changes = append(ex.Changes, Change{Seq: r.Seq, Time: r.Time, Event: eventName(r), Kind: kind, Index: idx, Before: before, After: after, Why: why})
		} else if mentioned && (out.Kind == decider.Rejected || out.Kind == decider.Ignored) {
			kind, why := explainNoEffect(r, out, before)
			ex.Changes = append(ex.Changes, Change{Seq: r.Seq, Time: r.Time, Event: eventName(r), Kind: kind, Index: idx, Before: before, After: after, Why: why})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	ex.End = f.last
	if i, ok := f.s.PartitionIndex(partition); ok {
		ex.Index = int64(i)
		ex.Final = f.s.Owners[i]
	}
	return ex, nil
}

// eventName names a record's event type, or "garbage".
func eventName(r *events.Record) string {
	if r.Event == nil {
		if r.Version > events.MaxVersion {
			return "newer-version"
		}
		return "garbage"
	}
	return r.Event.Type().String()
}

// mentions reports whether ev names partition (index i) directly.
func mentions(ev events.Event, i uint32, id string) bool {
	switch e := ev.(type) {
	case *events.AssignmentDecided:
		for _, mv := range e.Moves {
			if rangesHas(mv.Parts, i) {
				return true
			}
		}
	case *events.PartitionsReleased:
		for _, rel := range e.Released {
			if rel.Partition == i {
				return true
			}
		}
	case *events.OperatorAction:
		return e.Action == events.OpMove && e.Partition == id
	}
	return false
}

// rangesHas reports whether r holds i, without walking it.
func rangesHas(r events.Ranges, i uint32) bool {
	for k := 0; k+1 < len(r); k += 2 {
		if r[k] <= i && i <= r[k+1] {
			return true
		}
	}
	return false
}

// owner formats an ownership's owner and token.
func owner(o decider.Ownership) string {
	if o.Owner == "" {
		return "unowned"
	}
	return fmt.Sprintf("%s (token %d)", MemberRef(o.Owner, o.Inc), o.Token)
}

func decisionHeader(e *events.AssignmentDecided) string {
	return fmt.Sprintf("decision gen %d (%s, leader %s, based on seq %d)", e.Generation, e.Reason, MemberRef(e.Leader, e.LeaderInc), e.BasedOn)
}

func removalCause(e *events.MemberRemoved) string {
	s := fmt.Sprintf("%s was removed (%s", MemberRef(e.Member, e.Incarnation), e.Reason)
	if e.VerdictSeq != 0 {
		s += fmt.Sprintf(", verdict seq %d", e.VerdictSeq)
	}
	if e.Judge != "" {
		s += " by judge " + e.Judge
	}
	if e.SpanMillis != 0 {
		s += fmt.Sprintf(" after %d ms without a heartbeat", e.SpanMillis)
	}
	return s + ")"
}

// explainChange explains a record that changed the partition.
func explainChange(r *events.Record, out decider.Outcome, b, a decider.Ownership, wasDecl, isDecl bool, bi, ai uint32) (kind, why string) {
	switch e := r.Event.(type) {
	case *events.PartitionsDeclared:
		switch {
		case !wasDecl && isDecl:
			why = fmt.Sprintf("declared in partition set version %d by %s, at index %d", e.Version, e.By, ai)
			if a.Owner != "" {
				why += "; it goes back to " + owner(a) + ", which owned it when it was dropped and never released it"
			}
			return "declared", why
		case wasDecl && !isDecl:
			return "dropped", fmt.Sprintf("dropped from the partition set by version %d (declared by %s); it was %s", e.Version, e.By, ownedPhrase(b))
		case a.Token != b.Token:
			return "reindexed", fmt.Sprintf("re-declared in partition set version %d: index %d → %d, same owner, new token %d", e.Version, bi, ai, a.Token)
		default:
			return "reindexed", fmt.Sprintf("re-declared in partition set version %d: index %d → %d, ownership kept", e.Version, bi, ai)
		}
	case *events.AssignmentDecided:
		switch {
		case b.Owner == "" && a.Owner != "":
			return "assigned", fmt.Sprintf("%s assigns it to %s at once (it was unowned); token %d", decisionHeader(e), MemberRef(a.Owner, a.Inc), a.Token)
		case a.Target != "" && b.Target == "":
			return "move-requested", fmt.Sprintf("%s moves it from %s to %s: the move completes when %s releases it or is removed", decisionHeader(e), MemberRef(b.Owner, b.Inc), MemberRef(a.Target, a.TargetInc), MemberRef(b.Owner, b.Inc))
		}
	case *events.PartitionsReleased:
		who := MemberRef(e.Member, e.Incarnation)
		if a.Owner != "" {
			return "moved", fmt.Sprintf("%s released it (token %d); the waiting move completes: %s owns it, token %d", who, b.Token, MemberRef(a.Owner, a.Inc), a.Token)
		}
		return "released", fmt.Sprintf("%s released it (token %d) with no move waiting: unowned until a decision assigns it", who, b.Token)
	case *events.MemberRemoved:
		return goneChange(removalCause(e), e.Member, e.Incarnation, b, a)
	case *events.GraceEnded:
		cause := fmt.Sprintf("%s's restart grace ended", MemberRef(e.Member, e.Incarnation))
		if e.SpanMillis != 0 {
			cause += fmt.Sprintf(" (after %d ms)", e.SpanMillis)
		}
		return goneChange(cause, e.Member, e.Incarnation, b, a)
	case *events.MemberClaimed:
		if a.Owner == b.Owner && a.Inc != b.Inc {
			return "takeover", fmt.Sprintf("%s restarted: its new incarnation %s (granted at seq %d, nonce %s) takes it over with zero moves; token %d", b.Owner, MemberRef(a.Owner, a.Inc), r.Seq, e.Nonce, a.Token)
		}
		if a.Target == b.Target && a.TargetInc != b.TargetInc {
			return "retargeted", fmt.Sprintf("move target %s restarted: the move now goes to %s", b.Target, MemberRef(a.Target, a.TargetInc))
		}
	case *events.MemberClosing:
		if a.Owner == b.Owner && a.Inc != b.Inc {
			return "takeover", fmt.Sprintf("%s closed for a restart and its waiting claim was granted: %s takes it over with zero moves; token %d", MemberRef(e.Member, e.Incarnation), MemberRef(a.Owner, a.Inc), a.Token)
		}
		if b.Target != "" && a.Target == "" {
			return "move-cancelled", fmt.Sprintf("the move to %s is cancelled: it closed for a restart", MemberRef(b.Target, b.TargetInc))
		}
	case *events.MemberLeft:
		if b.Target != "" && a.Target == "" {
			return "move-cancelled", fmt.Sprintf("the move to %s is cancelled: it is leaving", MemberRef(b.Target, b.TargetInc))
		}
	case *events.Genesis:
		return "genesis", fmt.Sprintf("the group starts here as a new generation of group %s, from its log up to seq %d (genesis hash %s): %s at index %d; its earlier history is in that log", e.FromGroup, e.UpTo, e.Hash, describeOwnership(a), ai)
	case *events.OperatorAction:
		by := ""
		if e.By != "" {
			by = " by " + e.By
		}
		switch e.Action {
		case events.OpForceExpire:
			return goneChange(fmt.Sprintf("an operator force-expired %s%s", e.Member, by), b.Owner, b.Inc, b, a)
		case events.OpDrain, events.OpCordon:
			return "move-cancelled", fmt.Sprintf("the move to %s is cancelled: an operator %sed it%s", MemberRef(b.Target, b.TargetInc), e.Action, by)
		case events.OpMove:
			switch {
			case b.Owner == "" && a.Owner != "":
				return "assigned", fmt.Sprintf("an operator moved it to %s%s; it was unowned: token %d", MemberRef(a.Owner, a.Inc), by, a.Token)
			case a.Target != "":
				return "move-requested", fmt.Sprintf("an operator moved it to %s%s: the move completes when %s releases it", MemberRef(a.Target, a.TargetInc), by, MemberRef(b.Owner, b.Inc))
			default:
				return "move-cancelled", fmt.Sprintf("an operator moved it to its owner %s%s: the waiting move is cancelled", MemberRef(a.Owner, a.Inc), by)
			}
		}
	}
	return "changed", fmt.Sprintf("%s (%s) changed it from %s to %s", eventName(r), out.Kind, describeOwnership(b), describeOwnership(a))
}

// goneChange explains what a member's removal did to the partition.
func goneChange(cause, member string, inc uint64, b, a decider.Ownership) (string, string) {
	switch {
	case b.Owner == member && b.Inc == inc && a.Owner != "":
		return "moved", fmt.Sprintf("%s; the waiting move completes: %s owns it, token %d", cause, MemberRef(a.Owner, a.Inc), a.Token)
	case b.Owner == member && b.Inc == inc:
		return "orphaned", cause + "; unowned until the next decision re-owns it (an emergency)"
	case b.Target == member && a.Target == "":
		return "move-cancelled", cause + "; the move to it is cancelled"
	}
	return "changed", fmt.Sprintf("%s; %s → %s", cause, describeOwnership(b), describeOwnership(a))
}

func ownedPhrase(o decider.Ownership) string {
	if o.Owner == "" {
		return "unowned"
	}
	return "owned by " + owner(o)
}

// describeOwnership formats an ownership with its move in flight.
func describeOwnership(o decider.Ownership) string {
	s := owner(o)
	if o.Target != "" {
		s += " → " + MemberRef(o.Target, o.TargetInc)
	}
	return s
}

// explainNoEffect explains a record that named the partition but did not
// apply.
func explainNoEffect(r *events.Record, out decider.Outcome, b decider.Ownership) (kind, why string) {
	switch e := r.Event.(type) {
	case *events.AssignmentDecided:
		return "rejected", fmt.Sprintf("%s was rejected: %s (the partition stays %s)", decisionHeader(e), out.Reason, describeOwnership(b))
	case *events.PartitionsReleased:
		return "ignored", fmt.Sprintf("a release by %s was ignored: %s (the partition is %s)", MemberRef(e.Member, e.Incarnation), out.Reason, describeOwnership(b))
	case *events.OperatorAction:
		return "ignored", fmt.Sprintf("an operator move to %s was ignored: %s", e.Target, out.Reason)
	}
	return out.Kind.String(), out.Reason
}
