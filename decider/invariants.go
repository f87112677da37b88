package decider

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// The invariants of a State come in three pieces, so that a checker that
// follows a history record by record (replay's audit) can run only the ones a
// record may have broken, with the same code and the same messages as the
// whole check:
//
//   - CheckPartition: one partition's ownership, token and move, O(1);
//   - CheckMembers: the membership (join order, incarnations, statuses, the
//     claims that wait), O(members), with CheckMember for one member;
//   - CheckInvariants: all of the above plus the cross-checks of the derived
//     indexes (owned and incoming counts and lists, partition index, retired
//     partitions), O(partitions + members).
//
// Each message names what it is about with numbers and IDs only, so a
// checker that reports each distinct message once can normalise the numbers
// away.

// CheckInvariants returns every violated invariant of the durable state, or
// nil, in a deterministic order. Tests and the simulator run it after every
// step; replay's audit runs it every so many records and at the end, and
// CheckPartition and CheckMembers after each record in between.
func CheckInvariants(s *State) error {
	errs := CheckMembers(s)
	// Members in a deterministic order: join order when the membership
	// checks passed (Order is then exactly the members), else sorted IDs.
	ids := s.Order
	if len(errs) > 0 {
		ids = slices.Sorted(maps.Keys(s.Members))
	}
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if len(s.Owners) != len(s.Partitions) {
		bad("%d owners for %d partitions", len(s.Owners), len(s.Partitions))
	}
	if s.Weights != nil && len(s.Weights) != len(s.Partitions) {
		bad("%d weights for %d partitions", len(s.Weights), len(s.Partitions))
	}
	if s.index.len() != len(s.Partitions) {
		bad("index has %d entries for %d partitions", s.index.len(), len(s.Partitions))
	}
	owns, targets := map[string]int{}, map[string]int{}
	for i := range s.Owners {
		if i >= len(s.Partitions) {
			break
		}
		if j, ok := s.index.lookup(s.Partitions[i]); !ok || int(j) != i {
			bad("partition %d (%s) is not indexed", i, s.Partitions[i])
		}
		errs = append(errs, CheckPartition(s, i)...)
		if o := &s.Owners[i]; o.Owner != "" {
			owns[o.Owner]++
		}
		if t := s.Owners[i].Target; t != "" {
			targets[t]++
		}
	}
	var retired []string
	if len(s.Retired) > 0 {
		retired = slices.Sorted(maps.Keys(s.Retired))
	}
	for _, id := range retired {
		o := s.Retired[id]
		if _, declared := s.index.lookup(id); declared {
			bad("retired partition %s is declared", id)
		}
		if o.Owner == "" || o.Target != "" || o.Token == 0 || o.Token > s.LastSeq {
			bad("retired partition %s carries %+v", id, o)
		}
	}
	for _, id := range ids {
		m := s.Members[id]
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
	if s.Generation > 0 && len(s.Members) > 0 && s.LastSeq == 0 {
		bad("generation %d without a log", s.Generation)
	}
	return errors.Join(errs...)
}

// CheckPartition returns the violated invariants of partition p (its index
// in Partitions and Owners): an unowned partition carries no token or move;
// an owned one is owned by a member, with a token in (0, LastSeq]; a move in
// flight goes to a live member other than the owner. It returns nil when p
// is out of range (CheckInvariants reports a length mismatch) or fine. O(1).
func CheckPartition(s *State, p int) []error {
	if p < 0 || p >= len(s.Owners) {
		return nil
	}
	o := &s.Owners[p]
	if o.Owner == "" {
		if o.Inc != 0 || o.Token != 0 || o.Target != "" {
			return []error{fmt.Errorf("unowned partition %d carries %+v", p, *o)}
		}
		return nil
	}
	var errs []error
	if s.Incarnation(o.Owner, o.Inc) == nil {
		errs = append(errs, fmt.Errorf("partition %d is owned by %s/%d, not a member", p, o.Owner, o.Inc))
	}
	if o.Token == 0 || o.Token > s.LastSeq {
		errs = append(errs, fmt.Errorf("partition %d has token %d outside (0, %d]", p, o.Token, s.LastSeq))
	}
	if o.Target != "" {
		t := s.Incarnation(o.Target, o.TargetInc)
		switch {
		case t == nil:
			errs = append(errs, fmt.Errorf("partition %d moves to %s/%d, not a member", p, o.Target, o.TargetInc))
		case !t.Live():
			errs = append(errs, fmt.Errorf("partition %d moves to %s, which is not live", p, o.Target))
		case t.ID == o.Owner:
			errs = append(errs, fmt.Errorf("partition %d moves to its own owner", p))
		}
	}
	return errs
}

// CheckMembers returns the violated membership invariants, in join order:
// Order lists exactly the members, in increasing join sequence; each member
// passes CheckMember; no claim waits for an ID that is free. O(members +
// pending claims).
func CheckMembers(s *State) []error {
	var errs []error
	if len(s.Order) != len(s.Members) {
		errs = append(errs, fmt.Errorf("order has %d IDs for %d members", len(s.Order), len(s.Members)))
	}
	var prevJoin uint64
	for i, id := range s.Order {
		m := s.Members[id]
		if m == nil {
			errs = append(errs, fmt.Errorf("order[%d]=%s is not a member", i, id))
			continue
		}
		if i > 0 && m.JoinSeq <= prevJoin {
			errs = append(errs, fmt.Errorf("order is not join order at %s", id))
		}
		prevJoin = m.JoinSeq
		errs = append(errs, CheckMember(s, id)...)
	}
	for _, c := range s.Pending {
		if m := s.Members[c.ID]; m == nil || m.Closing {
			errs = append(errs, fmt.Errorf("claim %s for %s waits although the ID is free", c.Nonce, c.ID))
		}
	}
	return errs
}

// CheckMember returns the violated invariants of member id on its own: it
// is stored under its ID, holds the last incarnation granted to the ID, is
// not both leaving and closing, joined at or before LastSeq, and owns
// something if it is leaving (a leaving member that owns nothing is gone).
// The count of owned partitions it reads is cross-checked against the
// owners by CheckInvariants. It returns nil for an ID that is not a member.
// O(1).
func CheckMember(s *State, id string) []error {
	m := s.Members[id]
	if m == nil {
		return nil
	}
	var errs []error
	if m.ID != id {
		errs = append(errs, fmt.Errorf("member under %s has ID %s", id, m.ID))
	}
	if m.Incarnation != s.LastInc[id] {
		errs = append(errs, fmt.Errorf("%s has incarnation %d but the last granted is %d", id, m.Incarnation, s.LastInc[id]))
	}
	if m.Leaving && m.Closing {
		errs = append(errs, fmt.Errorf("%s is both leaving and closing", id))
	}
	if m.JoinSeq > s.LastSeq {
		errs = append(errs, fmt.Errorf("%s joined at %d after the last sequence %d", id, m.JoinSeq, s.LastSeq))
	}
	if m.Leaving && m.owns == 0 {
		errs = append(errs, fmt.Errorf("%s is leaving but owns nothing (it should be gone)", id))
	}
	return errs
}
