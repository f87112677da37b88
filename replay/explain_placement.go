package replay

import (
	"slices"
	"strings"

	"github.com/parti-io/parti/decider"
)

// placementWhy adds the placement reason to an explanation of partition i's
// change of kind: "moved: zone a lost" when its last owner's zone has no
// eligible member left, "moved back: affinity to zone a" when a decision
// takes it from a member outside its preferred set to one inside, and, for
// a partition left unowned, the constraint no eligible member meets. last
// holds the labels of its last owner before the change; "" when none apply.
func placementWhy(s *decider.State, i uint32, kind string, last []string, b, a decider.Ownership) string {
	cl := s.Class(int(i))
	switch kind {
	case "orphaned", "released":
		if len(cl.Require) > 0 && !anyEligibleHas(s, cl.Require) {
			return "; unplaceable: no eligible member has " + strings.Join(cl.Require, ",") + " (its constraint), so it stays unowned until one joins"
		}
	case "assigned", "move-requested":
		for _, l := range last {
			if strings.HasPrefix(l, "zone=") && !anyEligibleHas(s, []string{l}) {
				return "; moved: zone " + strings.TrimPrefix(l, "zone=") + " lost"
			}
		}
		dest := a.Owner
		if a.Target != "" {
			dest = a.Target
		}
		if len(cl.Prefer) == 0 || b.Owner == "" {
			return ""
		}
		to, from := s.Members[dest], s.Members[b.Owner]
		if to != nil && from != nil && hasAll(to.Labels, cl.Prefer) && !hasAll(from.Labels, cl.Prefer) {
			return "; moved back: affinity to " + labelWords(cl.Prefer)
		}
	}
	return ""
}

func hasAll(labels, want []string) bool {
	for _, w := range want {
		if !slices.Contains(labels, w) {
			return false
		}
	}
	return true
}

func anyEligibleHas(s *decider.State, want []string) bool {
	for _, id := range s.Order {
		if m := s.Members[id]; m.Eligible() && hasAll(m.Labels, want) {
			return true
		}
	}
	return false
}

// labelWords renders labels as words: "zone=a" → "zone a".
func labelWords(ls []string) string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = strings.Replace(l, "=", " ", 1)
	}
	return strings.Join(out, ", ")
}
