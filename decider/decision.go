package decider

import (
	"github.com/parti-io/parti/events"
)

// Rejection reasons (constant so that Apply does not allocate).
const (
	rejNotLeader   = "not by the current leader"
	rejStaleBase   = "computed on a different log position"
	rejGeneration  = "generation out of order"
	rejBadRanges   = "partition ranges invalid"
	rejSource      = "move source is not the current owner"
	rejInFlight    = "partition already moving"
	rejTarget      = "move target is not an eligible member"
	rejDuplicate   = "partition moved twice"
	rejPartOrder   = "decision part out of order"
	rejInterleaved = "multi-part decision interleaved with other events"
)

func (s *State) applyDecision(seq uint64, e *events.AssignmentDecided) Outcome {
	parts := max(e.Parts, 1)
	if e.Part != 0 {
		return s.reject(seq, e.Generation, rejPartOrder)
	}
	// Validate the fence at the first part's position: BasedOn must be the
	// log position just before this record.
	if out, ok := s.checkHeader(seq, e); !ok {
		return out
	}
	if parts == 1 {
		return s.validateAndApplyDecision(seq, e)
	}
	d := *e
	d.Moves = append([]events.Move(nil), e.Moves...)
	s.partial = &partial{firstSeq: seq, decision: &d, next: 1, parts: parts}
	return Outcome{Kind: Partial}
}

// checkHeader validates who decided and on which log. prevSeq is the log
// sequence before the decision: s.LastSeq was already advanced to seq, so
// the fold tracks the previous log sequence itself.
func (s *State) checkHeader(seq uint64, e *events.AssignmentDecided) (Outcome, bool) {
	if !s.IsLeader(e.Leader, e.LeaderInc) {
		return s.reject(seq, e.Generation, rejNotLeader), false
	}
	if e.BasedOn != s.prevSeq {
		return s.reject(seq, e.Generation, rejStaleBase), false
	}
	if e.Generation != s.Generation+1 {
		return s.reject(seq, e.Generation, rejGeneration), false
	}
	return Outcome{}, true
}

func (s *State) reject(seq, gen uint64, reason string) Outcome {
	if s.LastRejection == nil {
		s.LastRejection = &Rejection{}
	}
	*s.LastRejection = Rejection{Seq: seq, Generation: gen, Reason: reason}
	return Outcome{Kind: Rejected, Reason: reason}
}

// validateAndApplyDecision checks every move against the state at the
// decision's position (seq is the first part's sequence) and applies all of
// them, or none.
func (s *State) validateAndApplyDecision(seq uint64, e *events.AssignmentDecided) Outcome {
	n := len(s.Owners)
	seen := make(map[uint32]struct{})
	for i := range e.Moves {
		mv := &e.Moves[i]
		if err := mv.Parts.Valid(n); err != nil || len(mv.Parts) == 0 {
			return s.reject(seq, e.Generation, rejBadRanges)
		}
		t := s.Incarnation(mv.To, mv.ToInc)
		if t == nil || !t.Eligible() {
			return s.reject(seq, e.Generation, rejTarget)
		}
		reason := ""
		mv.Parts.Each(func(p uint32) bool {
			if _, dup := seen[p]; dup {
				reason = rejDuplicate
				return false
			}
			seen[p] = struct{}{}
			o := &s.Owners[p]
			if o.Owner != mv.From || (mv.From != "" && o.Inc != mv.FromInc) {
				reason = rejSource
				return false
			}
			if o.Target != "" {
				reason = rejInFlight
				return false
			}
			if o.Owner == mv.To && o.Inc == mv.ToInc {
				reason = rejSource
				return false
			}
			return true
		})
		if reason != "" {
			return s.reject(seq, e.Generation, reason)
		}
	}
	for i := range e.Moves {
		mv := &e.Moves[i]
		mv.Parts.Each(func(p uint32) bool {
			o := &s.Owners[p]
			if o.Owner == "" {
				o.Owner, o.Inc, o.Token = mv.To, mv.ToInc, seq
			} else {
				o.Target, o.TargetInc = mv.To, mv.ToInc
			}
			return true
		})
	}
	s.Generation = e.Generation
	return applied()
}
