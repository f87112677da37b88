package replay

import (
	"fmt"
	"strings"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
)

// writePlacement prints the placement lines of a state: each member's
// labels and capacity, the constraint classes in use, and the unplaceable
// partitions with the labels they require. Nothing when the group uses no
// labels, capacities or constraints.
func writePlacement(t *textWriter, r *StateReport) {
	s := r.State
	var ms []string
	for _, id := range s.Order {
		m := s.Members[id]
		if len(m.Labels) == 0 && m.Capacity <= 1 {
			continue
		}
		ms = append(ms, memberPlacement(m))
	}
	if len(ms) > 0 {
		t.f("placement: %s\n", strings.Join(ms, "; "))
	}
	if s.ClassOf != nil {
		count := make([]int, len(s.Classes))
		for _, c := range s.ClassOf {
			count[c]++
		}
		var cs []string
		for c, cl := range s.Classes {
			if count[c] > 0 {
				cs = append(cs, fmt.Sprintf("%d %s", count[c], classText(cl)))
			}
		}
		t.f("constraints: %s\n", strings.Join(cs, "; "))
	}
	if len(r.Unplaceable) > 0 {
		shown := r.Unplaceable
		more := ""
		if len(shown) > 10 {
			shown, more = shown[:10], fmt.Sprintf(" … %d more", len(r.Unplaceable)-10)
		}
		t.f("unplaceable: %d partitions no eligible member may own (%s%s)\n", len(r.Unplaceable), strings.Join(shown, ", "), more)
	}
}

func memberPlacement(m *decider.Member) string {
	out := m.ID
	if m.Capacity > 1 {
		out += fmt.Sprintf(" capacity %d", m.Capacity)
	}
	if len(m.Labels) > 0 {
		out += " " + strings.Join(m.Labels, ",")
	}
	return out
}

// classText renders a class: "unconstrained", "require region=eu",
// "prefer zone=a", or both.
func classText(c events.Class) string {
	var parts []string
	if len(c.Require) > 0 {
		parts = append(parts, "require "+strings.Join(c.Require, ","))
	}
	if len(c.Prefer) > 0 {
		parts = append(parts, "prefer "+strings.Join(c.Prefer, ","))
	}
	if len(parts) == 0 {
		return "unconstrained"
	}
	return strings.Join(parts, ", ")
}
