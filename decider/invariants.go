package decider

import (
	"errors"
	"fmt"
)

// CheckInvariants returns every violated invariant of the durable state, or
// nil. Tests and the simulator run it after every step; replay's audit runs it
// after every record.
func CheckInvariants(s *State) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if len(s.Order) != len(s.Members) {
		bad("order has %d IDs for %d members", len(s.Order), len(s.Members))
	}
	var prevJoin uint64
	for i, id := range s.Order {
		m := s.Members[id]
		if m == nil {
			bad("order[%d]=%s is not a member", i, id)
			continue
		}
		if m.ID != id {
			bad("member under %s has ID %s", id, m.ID)
		}
		if i > 0 && m.JoinSeq <= prevJoin {
			bad("order is not join order at %s", id)
		}
		prevJoin = m.JoinSeq
		if m.Incarnation != s.LastInc[id] {
			bad("%s has incarnation %d but the last granted is %d", id, m.Incarnation, s.LastInc[id])
		}
		if m.Leaving && m.Closing {
			bad("%s is both leaving and closing", id)
		}
		if m.JoinSeq > s.LastSeq {
			bad("%s joined at %d after the last sequence %d", id, m.JoinSeq, s.LastSeq)
		}
	}
	if len(s.Owners) != len(s.Partitions) {
		bad("%d owners for %d partitions", len(s.Owners), len(s.Partitions))
	}
	if s.Weights != nil && len(s.Weights) != len(s.Partitions) {
		bad("%d weights for %d partitions", len(s.Weights), len(s.Partitions))
	}
	if len(s.index) != len(s.Partitions) {
		bad("index has %d entries for %d partitions", len(s.index), len(s.Partitions))
	}
	owns := map[string]int{}
	for i := range s.Owners {
		if i >= len(s.Partitions) {
			break
		}
		o := &s.Owners[i]
		if j, ok := s.index[s.Partitions[i]]; !ok || int(j) != i {
			bad("partition %d (%s) is not indexed", i, s.Partitions[i])
		}
		if o.Owner == "" {
			if o.Inc != 0 || o.Token != 0 || o.Target != "" {
				bad("unowned partition %d carries %+v", i, *o)
			}
			continue
		}
		if s.Incarnation(o.Owner, o.Inc) == nil {
			bad("partition %d is owned by %s/%d, not a member", i, o.Owner, o.Inc)
		}
		owns[o.Owner]++
		if o.Token == 0 || o.Token > s.LastSeq {
			bad("partition %d has token %d outside (0, %d]", i, o.Token, s.LastSeq)
		}
		if o.Target != "" {
			t := s.Incarnation(o.Target, o.TargetInc)
			switch {
			case t == nil:
				bad("partition %d moves to %s/%d, not a member", i, o.Target, o.TargetInc)
			case !t.Live():
				bad("partition %d moves to %s, which is not live", i, o.Target)
			case t.ID == o.Owner:
				bad("partition %d moves to its own owner", i)
			}
		}
	}
	for id, o := range s.Retired {
		if _, declared := s.index[id]; declared {
			bad("retired partition %s is declared", id)
		}
		if o.Owner == "" || o.Target != "" || o.Token == 0 || o.Token > s.LastSeq {
			bad("retired partition %s carries %+v", id, o)
		}
	}
	targets := map[string]int{}
	for i := range s.Owners {
		if t := s.Owners[i].Target; t != "" {
			targets[t]++
		}
	}
	for id, m := range s.Members {
		if m.owns != owns[id] || m.targets != targets[id] {
			bad("%s counts %d owned and %d incoming, the owners say %d and %d", id, m.owns, m.targets, owns[id], targets[id])
		}
		if len(s.ownL.next) != len(s.Owners) || len(s.tgtL.next) != len(s.Owners) {
			bad("the member index covers %d partitions, not %d", len(s.ownL.next), len(s.Owners))
			continue
		}
		n := 0
		s.ownL.each(m.ownHead, func(p uint32) {
			n++
			if o := &s.Owners[p]; o.Owner != id || o.Inc != m.Incarnation {
				bad("%s's owned list holds partition %d, owned by %s/%d", id, p, o.Owner, o.Inc)
			}
		})
		if n != owns[id] {
			bad("%s's owned list has %d partitions, it owns %d", id, n, owns[id])
		}
		n = 0
		s.tgtL.each(m.tgtHead, func(p uint32) {
			n++
			if o := &s.Owners[p]; o.Target != id || o.TargetInc != m.Incarnation {
				bad("%s's incoming list holds partition %d, moving to %s/%d", id, p, o.Target, o.TargetInc)
			}
		})
		if n != targets[id] {
			bad("%s's incoming list has %d partitions, %d move to it", id, n, targets[id])
		}
	}
	for _, id := range s.Order {
		if m := s.Members[id]; m != nil && m.Leaving && owns[id] == 0 {
			bad("%s is leaving but owns nothing (it should be gone)", id)
		}
	}
	for _, c := range s.Pending {
		m := s.Members[c.ID]
		if m == nil || m.Closing {
			bad("claim %s for %s waits although the ID is free", c.Nonce, c.ID)
		}
	}
	if s.Generation > 0 && len(s.Members) > 0 && s.LastSeq == 0 {
		bad("generation %d without a log", s.Generation)
	}
	return errors.Join(errs...)
}
