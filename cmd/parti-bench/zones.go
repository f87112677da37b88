package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/strategy"
)

// The placement figures: a fleet of 3 zones × 3 members (capacities 1, 2
// and 3 in each zone) under the "placement" strategy, a fifth of the
// partitions preferring zone a and a fifth restricted to region=eu (zones a
// and b), loses zone c (its members stop without leaving):
//
//	zone_loss_moved_over_min  moves / the partitions zone c held (the
//	                          minimum: nothing else has to move)
//	zone_loss_balance         max/mean load per capacity unit after the loss
//
// and the strategy's own cost at 500 members × 100,000 partitions.

type zoneSpec struct {
	id, zone string
	capacity uint32
}

func zoneSpecs() []zoneSpec {
	var out []zoneSpec
	for _, z := range []string{"a", "b", "c"} {
		for k, c := range []uint32{1, 2, 3} {
			out = append(out, zoneSpec{id: fmt.Sprintf("%s%d", z, k+1), zone: z, capacity: c})
		}
	}
	return out
}

func (z zoneSpec) config(f *fleet, constraints []parti.Constraint, expected int) parti.Config {
	cfg := f.cfg(z.id, expected)
	cfg.Strategy = strategy.NamePlacement
	cfg.Constraints = constraints
	region := "eu"
	if z.zone == "c" {
		region = "us"
	}
	cfg.Labels = map[string]string{"zone": z.zone, "region": region}
	cfg.Capacity = z.capacity
	return cfg
}

// zoneRun measures one zone loss.
func (b *bench) zoneRun(ctx context.Context, r int) error {
	f := &fleet{b: b, group: fmt.Sprintf("zones-%d-%d", os.Getpid(), r), tr: newTracker(), members: map[string]*parti.Member{}}
	for i := range b.o.partitions {
		f.parts = append(f.parts, fmt.Sprintf("p-%05d", i))
	}
	defer func() {
		for _, m := range f.members {
			m.Stop()
		}
	}()
	constraints := make([]parti.Constraint, len(f.parts))
	for i := range constraints {
		switch i % 5 {
		case 1:
			constraints[i] = parti.Constraint{Prefer: map[string]string{"zone": "a"}}
		case 2:
			constraints[i] = parti.Constraint{Require: map[string]string{"region": "eu"}}
		}
	}
	specs := zoneSpecs()
	capOf := map[string]float64{}
	for _, z := range specs {
		m, err := parti.Join(ctx, b.js, z.config(f, constraints, len(specs)))
		if err != nil {
			return err
		}
		f.members[z.id] = m
		capOf[z.id] = float64(z.capacity)
	}
	const timeout = 60 * time.Second
	if err := f.tr.wait(ctx, timeout, f.settled); err != nil {
		return fmt.Errorf("zones: cold start: %w", err)
	}
	before := locked(f, f.owners)
	held := 0
	for _, o := range before {
		if strings.HasPrefix(o, "c") {
			held++
		}
	}
	for _, id := range sortedIDs(f.members) {
		if strings.HasPrefix(id, "c") {
			f.members[id].Stop()
			delete(f.members, id)
		}
	}
	if err := f.tr.wait(ctx, timeout, func() bool {
		for _, o := range f.tr.holder {
			if strings.HasPrefix(o, "c") {
				return false
			}
		}
		return f.settled()
	}); err != nil {
		return fmt.Errorf("zones: zone loss: %w", err)
	}
	after := locked(f, f.owners)
	b.add("zoneloss", float64(movedCount(before, after))/float64(max(held, 1)))
	load := map[string]float64{}
	for _, o := range after {
		load[o]++
	}
	var total, capTotal, worst float64
	for id := range f.members {
		total += load[id]
		capTotal += capOf[id]
		worst = max(worst, load[id]/capOf[id])
	}
	b.add("zonebalance", worst/(total/capTotal))
	return nil
}

// placementCost times strategy.Placement at 500 members (3 zones,
// capacities 1–4) × 100,000 partitions (constrained as in zoneRun): a full
// assignment from nothing, and the rebalance after zone c is lost.
func (b *bench) placementCost() error {
	const n, p = 500, 100_000
	var members []string
	var labels [][]string
	var caps []uint32
	for k := range n {
		z := []string{"a", "b", "c"}[k%3]
		region := "region=eu"
		if z == "c" {
			region = "region=us"
		}
		members = append(members, fmt.Sprintf("worker-%s-%04d", z, k))
		labels = append(labels, []string{region, "zone=" + z})
		caps = append(caps, uint32(1+k%4))
	}
	// members are sorted already: worker-a-… < worker-b-… < worker-c-…,
	// but not by k within the prefix order; sort the three together.
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(x, y int) int { return strings.Compare(members[x], members[y]) })
	in := strategy.Input{Partitions: make([]string, p), ClassOf: make([]uint32, p),
		Classes: []strategy.Class{{}, {Prefer: []string{"zone=a"}}, {Require: []string{"region=eu"}}}}
	for _, i := range idx {
		in.Members = append(in.Members, members[i])
		in.Labels = append(in.Labels, labels[i])
		in.Capacities = append(in.Capacities, caps[i])
	}
	for i := range in.Partitions {
		in.Partitions[i] = fmt.Sprintf("tenant-%06d", i)
		in.ClassOf[i] = uint32([]int{0, 1, 2, 0, 0}[i%5])
	}
	s := strategy.Placement{}
	runs := max(b.o.runs, 5)
	var out []int32
	for range runs {
		t0 := time.Now()
		var err error
		out, err = s.Assign(in)
		if err != nil {
			return err
		}
		b.add("placement_empty", ms(time.Since(t0)))
	}
	lost := strategy.Input{Partitions: in.Partitions, ClassOf: in.ClassOf, Classes: in.Classes, Previous: make([]string, p)}
	for i, o := range out {
		lost.Previous[i] = in.Members[o]
	}
	for k, id := range in.Members {
		if !strings.HasPrefix(id, "worker-c-") {
			lost.Members = append(lost.Members, id)
			lost.Labels = append(lost.Labels, in.Labels[k])
			lost.Capacities = append(lost.Capacities, in.Capacities[k])
		}
	}
	for range runs {
		t0 := time.Now()
		if _, err := s.Assign(lost); err != nil {
			return err
		}
		b.add("placement_zoneloss", ms(time.Since(t0)))
	}
	return nil
}

// placementOnly runs and prints only the placement figures.
func (b *bench) placementOnly(ctx context.Context, stdout io.Writer) error {
	for r := range b.o.runs {
		if err := b.zoneRun(ctx, r); err != nil {
			return fmt.Errorf("zone run %d: %w", r, err)
		}
	}
	if err := b.placementCost(); err != nil {
		return err
	}
	for _, f := range []struct{ name, series, unit string }{
		{"zone_loss_moved_over_min", "zoneloss", "ratio"},
		{"zone_loss_balance", "zonebalance", "ratio"},
		{"placement_strategy_500x100000_ms", "placement_empty", "ms"},
		{"placement_zone_loss_500x100000_ms", "placement_zoneloss", "ms"},
	} {
		med, p90, mx := quantiles(b.series[f.series])
		fmt.Fprintf(stdout, "%s %s %s\n%s_p90 %s %s\n%s_max %s %s\n", f.name, fmtNum(med), f.unit, f.name, fmtNum(p90), f.unit, f.name, fmtNum(mx), f.unit)
	}
	return nil
}
