package decider

import (
	"slices"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/strategy"
)

// placementInput fills the placement fields of in (members' labels and
// capacities, the declared classes) for the partitions idx of s (all of
// them when whole). The strategies other than "placement" ignore them.
func (s *State) placementInput(in *strategy.Input, idx []uint32, whole bool) {
	for k, id := range in.Members {
		if !s.Members[id].Eligible() {
			if in.Frozen == nil {
				in.Frozen = make([]bool, len(in.Members))
			}
			in.Frozen[k] = true
		}
	}
	labelled := false
	for _, id := range in.Members {
		if m := s.Members[id]; len(m.Labels) != 0 || m.Capacity > 1 {
			labelled = true
			break
		}
	}
	if labelled {
		in.Labels = make([][]string, len(in.Members))
		in.Capacities = make([]uint32, len(in.Members))
		for k, id := range in.Members {
			m := s.Members[id]
			in.Labels[k] = m.Labels
			in.Capacities[k] = max(m.Capacity, 1)
		}
	}
	if s.ClassOf == nil {
		return
	}
	in.Classes = classesOf(s.Classes)
	if whole {
		in.ClassOf = s.ClassOf
		return
	}
	in.ClassOf = make([]uint32, len(idx))
	for k, i := range idx {
		in.ClassOf[k] = s.ClassOf[i]
	}
}

// withFrozen returns eligible plus the members whose partitions Decide
// holds (closing for a restart; cordoned, live and not draining), sorted.
// The placement strategy gets them as frozen members: they keep what they
// own and receive nothing, and their load still counts in every class's
// shares, so a close and the restart that follows move nothing else.
func (s *State) withFrozen(eligible []string) []string {
	out := slices.Clone(eligible)
	for _, id := range s.Order {
		if m := s.Members[id]; m.Closing || (m.Cordoned && !m.Draining && m.Live()) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func classesOf(cs []events.Class) []strategy.Class {
	out := make([]strategy.Class, len(cs))
	for i, c := range cs {
		out[i] = strategy.Class{Require: c.Require, Prefer: c.Prefer}
	}
	return out
}

// Unplaceable returns the declared partitions that no eligible member may
// own: their class requires labels no eligible member carries. They stay
// unowned (the placement strategy leaves them so) until such a member joins.
// Sorted by partition index.
func (s *State) Unplaceable() []string {
	if s.ClassOf == nil {
		return nil
	}
	var eligible []string
	for _, id := range s.Order {
		if m := s.Members[id]; m.Eligible() {
			eligible = append(eligible, id)
		}
	}
	if len(eligible) == 0 {
		return nil // nothing is placeable, for want of members, not of labels
	}
	slices.Sort(eligible)
	in := strategy.Input{Members: eligible, Partitions: s.Partitions}
	s.placementInput(&in, nil, true)
	var out []string
	for _, i := range strategy.Unplaceable(in) {
		out = append(out, s.Partitions[i])
	}
	return out
}

// Class returns partition i's constraint class (the zero Class when it has
// none).
func (s *State) Class(i int) events.Class {
	if s.ClassOf == nil || i < 0 || i >= len(s.ClassOf) {
		return events.Class{}
	}
	return s.Classes[s.ClassOf[i]]
}

// CapacityOrOne returns m's capacity (1 when it declared none).
func (m *Member) CapacityOrOne() uint32 { return max(m.Capacity, 1) }
