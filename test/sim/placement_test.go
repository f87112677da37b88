package sim

import (
	"testing"

	"github.com/parti-io/parti/strategy"
)

// TestSimCatchesPlacementViolations: with a strategy that ignores
// constraints ("sticky") in placement mode, the simulator reports a
// placement violation; with "placement", the same seeds pass and lose
// zones.
func TestSimCatchesPlacementViolations(t *testing.T) {
	caught := 0
	var zoneLosses int
	for seed := uint64(1); seed < 40 && caught == 0; seed += 2 {
		opt := DefaultOptions(seed)
		opt.Steps = 2000
		opt.PlacementStrategy = strategy.NameSticky
		if res := Run(opt); res.Violation != nil {
			if res.Violation.Kind != KindPlacement {
				t.Fatalf("seed %d: %v, want a placement violation", seed, res.Violation)
			}
			caught++
		}
		opt.PlacementStrategy = ""
		res := Run(opt)
		if res.Violation != nil {
			t.Fatalf("seed %d with the placement strategy: %v", seed, res.Violation)
		}
		zoneLosses += res.Stats.ZoneLosses
	}
	if caught == 0 {
		t.Fatal("no placement violation caught with a strategy that ignores constraints")
	}
	t.Logf("zone losses in the passing runs: %d", zoneLosses)
}
