package sim

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/rawmember"
	"github.com/parti-io/parti/strategy"
)

// Placement mode: with Options.Placement, odd seeds run the "placement"
// strategy. Members are labelled by their ID's number: zone a, b or c
// (region=eu for a and b, region=us for c) and capacity 1, 2 or 3.
// Partitions fall in four constraint classes by their universe index: no
// constraint, prefer zone a, require zone b (unplaceable while zone b is
// down), and require region=eu preferring zone b. The zone-loss fault crashes
// every live process of one zone at once and restarts them later. The checks:
// no partition is ever owned by (or moving to) a member that lacks its
// class's required labels, and at quiescence only unplaceable partitions
// may be unowned.

// simClasses are the sim's constraint classes, indexed by universe index mod 4.
var simClasses = []events.Class{
	{},
	{Prefer: []string{"zone=a"}},
	{Require: []string{"zone=b"}},
	{Require: []string{"region=eu"}, Prefer: []string{"zone=b"}},
}

var simZones = []string{"a", "b", "c"}

// placing reports whether this run is in placement mode.
func (w *world) placing() bool { return w.opt.Placement && w.opt.Seed%2 == 1 }

func idNumber(id string) int {
	n, _ := strconv.Atoi(id[1:]) // IDs are w<n> (newID)
	return n
}

func zoneOf(id string) string { return simZones[idNumber(id)%len(simZones)] }

// placeConfig sets cfg's labels, capacity, strategy and classes in
// placement mode.
func (w *world) placeConfig(cfg *rawmember.Config) {
	if !w.placing() {
		return
	}
	z := zoneOf(cfg.ID)
	region := "region=eu"
	if z == "c" {
		region = "region=us"
	}
	cfg.Labels = []string{region, "zone=" + z}
	cfg.Capacity = uint32(1 + idNumber(cfg.ID)%3)
	cfg.Strategy = cmp.Or(w.opt.PlacementStrategy, strategy.NamePlacement)
	cfg.Classes, cfg.ClassOf = simClasses, simClassOf(cfg.Partitions)
}

// simClassOf returns the class of each of ids (placement mode runs on the
// default universe).
func simClassOf(ids []string) []uint32 {
	out := make([]uint32, len(ids))
	for i, id := range ids {
		out[i] = uint32(defaultUniverseIndex[id] % len(simClasses))
	}
	return out
}

// setPartitions gives m a new partition set (and, in placement mode, its
// classes).
func (w *world) setPartitions(m *rawmember.Member, ids []string) {
	m.SetPartitions(ids, nil, "")
	if w.placing() {
		m.SetPlacement(simClasses, simClassOf(ids))
	}
}

// injectZoneLoss crashes every live process of a random zone, at
// ZoneLossRate, and schedules their restarts 1–8 s later.
func (w *world) injectZoneLoss(dt time.Duration) {
	if !w.placing() || !w.perStep(w.opt.ZoneLossRate, dt) {
		return
	}
	z := simZones[w.rng.IntN(len(simZones))]
	back := w.T + w.dur(time.Second, 8*time.Second)
	lost := 0
	for _, p := range w.alive() {
		if zoneOf(p.id) == z {
			w.crash(p, "zone "+z+" lost")
			w.pending = append(w.pending, pendingStart{at: back, id: p.id})
			lost++
		}
	}
	w.stats.ZoneLosses++
	w.tracef("zone %s lost (%d processes), back at %v", z, lost, back)
}

// checkPlacement fails when a partition of the authoritative fold is owned
// by, or moving to, a member without its class's required labels.
func (w *world) checkPlacement() {
	if w.auth.ClassOf == nil {
		return
	}
	ok := func(id string, inc uint64, i int) bool {
		m := w.auth.Incarnation(id, inc)
		if m == nil {
			return true // a departed owner: the fold moves it
		}
		for _, l := range w.auth.Class(i).Require {
			if !slices.Contains(m.Labels, l) {
				return false
			}
		}
		return true
	}
	for i, o := range w.auth.Owners {
		if o.Owner != "" && !ok(o.Owner, o.Inc, i) {
			w.fail(KindPlacement, "%s (class %+v) owned by %s/%d without the required labels", w.auth.Partitions[i], w.auth.Class(i), o.Owner, o.Inc)
			return
		}
		if o.Target != "" && !ok(o.Target, o.TargetInc, i) {
			w.fail(KindPlacement, "%s (class %+v) moving to %s/%d without the required labels", w.auth.Partitions[i], w.auth.Class(i), o.Target, o.TargetInc)
			return
		}
	}
}

// unplaceable reports whether partition id is exempt from the liveness
// check at quiescence: no eligible member meets its constraint. It is then
// unowned, or still owned by a leaving member that was the last to meet the
// constraint (a decision cannot move a partition to nobody, so that member
// keeps it until it is gone).
func (w *world) unplaceable(id string) bool {
	return slices.Contains(w.auth.Unplaceable(), id)
}
