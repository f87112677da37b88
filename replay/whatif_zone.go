package replay

import (
	"slices"
	"strings"
	"time"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
)

// WhatIfZoneLoss is what losing a zone would do at the end of the history
// (WhatIfOptions.FailZone): the what-if removes every live member labelled
// zone=Zone (as expiries would), its leader decides, the sources release,
// and this reports the moves against the minimum, the balance per capacity
// unit and the partitions no live member may own.
type WhatIfZoneLoss struct {
	// Zone is the zone lost; Label the label matched ("zone=a").
	Zone  string `json:"zone"`
	Label string `json:"label"`
	// Members are the members lost, by ID.
	Members []string `json:"members"`
	// Held is how many partitions the lost members owned: the minimum that
	// has to move. Moved counts the partitions whose owner changed
	// (including those left unowned).
	Held  int `json:"held"`
	Moved int `json:"moved"`
	// MovedOverMin is Moved / Held (0 when Held is 0).
	MovedOverMin float64 `json:"moved_over_min"`
	// BalanceBefore and BalanceAfter are the max/mean load per capacity
	// unit over the eligible members before and after the loss.
	BalanceBefore float64 `json:"balance_before"`
	BalanceAfter  float64 `json:"balance_after"`
	// Unplaceable lists the partitions that no live member may own after
	// the loss, with the labels their constraint requires.
	Unplaceable []UnplaceablePartition `json:"unplaceable"`
}

// UnplaceablePartition is a partition whose constraint no eligible member
// meets.
type UnplaceablePartition struct {
	Partition string   `json:"partition"`
	Require   []string `json:"require"`
}

// failZone applies the zone loss to the what-if's final state.
func (w *whatIf) failZone(t time.Time, zone string) *WhatIfZoneLoss {
	label := zone
	if !strings.Contains(zone, "=") {
		label = "zone=" + zone
	}
	z := &WhatIfZoneLoss{Zone: zone, Label: label, Members: []string{}, Unplaceable: []UnplaceablePartition{}}
	z.BalanceBefore = capacityBalance(w.s)
	before := make([]string, len(w.s.Owners))
	for i, o := range w.s.Owners {
		before[i] = o.Owner
	}
	var lost []*decider.Member
	for _, m := range w.s.LiveMembers() {
		if slices.Contains(m.Labels, label) {
			lost = append(lost, m)
			z.Members = append(z.Members, m.ID)
		}
	}
	slices.Sort(z.Members)
	if len(lost) == 0 {
		w.note("no live member is labelled %s at the end of the history: nothing to lose", label)
		return z
	}
	lostIDs := map[string]bool{}
	for _, m := range lost {
		lostIDs[m.ID] = true
	}
	for _, o := range before {
		if lostIDs[o] {
			z.Held++
		}
	}
	for _, m := range lost {
		w.apply(t, &events.MemberRemoved{Member: m.ID, Incarnation: m.Incarnation, Reason: events.ReasonExpired, Judge: "what-if"})
	}
	// Decide until nothing moves (an emergency first, then a rebalance).
	for range 4 {
		if side := w.decide(t); !side.Decided {
			break
		}
	}
	for i, o := range w.s.Owners {
		if before[i] != "" && o.Owner != before[i] {
			z.Moved++
		}
	}
	if z.Held > 0 {
		z.MovedOverMin = float64(z.Moved) / float64(z.Held)
	}
	z.BalanceAfter = capacityBalance(w.s)
	un := map[string]bool{}
	for _, id := range w.s.Unplaceable() {
		un[id] = true
	}
	for i, id := range w.s.Partitions {
		if un[id] {
			z.Unplaceable = append(z.Unplaceable, UnplaceablePartition{Partition: id, Require: slices.Clone(w.s.Class(i).Require)})
		}
	}
	return z
}

// capacityBalance returns max/mean load per capacity unit over the eligible
// members of s (each partition counted for its owner, or its target while
// moving); 0 with no eligible member or no load.
func capacityBalance(s *decider.State) float64 {
	load := map[string]float64{}
	for i := range s.Owners {
		o := &s.Owners[i]
		id := o.Owner
		if o.Target != "" {
			id = o.Target
		}
		load[id]++
	}
	var total, capTotal, worst float64
	for _, id := range s.Order {
		m := s.Members[id]
		if !m.Eligible() {
			continue
		}
		c := float64(m.CapacityOrOne())
		total += load[id]
		capTotal += c
		worst = max(worst, load[id]/c)
	}
	if total == 0 {
		return 0
	}
	return worst / (total / capTotal)
}

// writeZoneLoss prints the zone-loss section of a what-if.
func (z *WhatIfZoneLoss) writeText(t *textWriter) {
	t.f("losing %s: %d members (%s)\n", z.Label, len(z.Members), strings.Join(z.Members, ", "))
	t.f("  moved %d partitions; the zone held %d, which have to move: moved/held %.3f\n", z.Moved, z.Held, z.MovedOverMin)
	t.f("  max/mean load per capacity unit: %.3f before, %.3f after\n", z.BalanceBefore, z.BalanceAfter)
	if len(z.Unplaceable) == 0 {
		t.f("  unplaceable partitions: none\n")
		return
	}
	t.f("  unplaceable partitions (%d): no live member meets their constraint\n", len(z.Unplaceable))
	for i, u := range z.Unplaceable {
		if i == MaxTextRows {
			t.f("    … %d more (--json lists all)\n", len(z.Unplaceable)-i)
			break
		}
		t.f("    %s requires %s\n", u.Partition, strings.Join(u.Require, ","))
	}
}
