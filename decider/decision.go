package decider

import (
	"sync"

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
	scratch := getBitset(n)
	defer putBitset(scratch)
	seen := *scratch
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
			if seen.has(p) {
				reason = rejDuplicate
				return false
			}
			seen.add(p)
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
		t := s.Members[mv.To] // validated above: the eligible incarnation
		mv.Parts.Each(func(p uint32) bool {
			o := &s.Owners[p]
			if o.Owner == "" {
				s.own(p, t, seq)
			} else {
				s.retarget(p, t)
			}
			return true
		})
	}
	s.Generation = e.Generation
	return applied()
}

// bitset is a set of partition indices, for the duplicate check of
// validateAndApplyDecision: a map there cost an allocation per decision and
// one map insert per partition moved.
type bitset []uint64

func (b bitset) has(p uint32) bool { return b[p>>6]&(1<<(p&63)) != 0 }
func (b bitset) add(p uint32)      { b[p>>6] |= 1 << (p & 63) }

// bitsets recycles bitsets between decisions (and between states folded on
// different goroutines): a fold allocates one only when the partition set
// outgrows it. The set's contents never outlive a call, so which bitset a
// call gets cannot change what Apply does.
var bitsets = sync.Pool{New: func() any { return new(bitset) }}

// getBitset returns an empty set with room for indices below n.
func getBitset(n int) *bitset {
	b := bitsets.Get().(*bitset)
	words := (n + 63) / 64
	if cap(*b) < words {
		*b = make(bitset, words)
	}
	*b = (*b)[:words]
	return b
}

func putBitset(b *bitset) {
	clear(*b)
	bitsets.Put(b)
}
