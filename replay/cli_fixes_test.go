package replay

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestWhatIfRecordedTotalsDoNotDependOnOptions: the recorded side of a
// what-if is the history itself; its figures are the same whatever the
// what-if's strategy or window.
func TestWhatIfRecordedTotalsDoNotDependOnOptions(t *testing.T) {
	src := memSource(t, scenario(t))
	zero, long := time.Duration(0), time.Minute
	var first *WhatIfReport
	for _, opts := range []WhatIfOptions{
		{Strategy: "consistent-hash"},
		{Strategy: "round-robin"},
		{Window: &zero},
		{Window: &long},
	} {
		rep, err := WhatIf(context.Background(), src, opts)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = rep
			continue
		}
		if rep.Recorded != first.Recorded {
			t.Errorf("options %+v: recorded totals %+v; with %+v they were %+v", opts, rep.Recorded, WhatIfOptions{Strategy: "consistent-hash"}, first.Recorded)
		}
	}
}

// TestStateReportSaysWhatWasRead: a point before the end reads only up to
// it, and says so; a point before the first record has no group.
func TestStateReportSaysWhatWasRead(t *testing.T) {
	recs := scenario(t)
	src := memSource(t, recs)
	for _, tc := range []struct {
		pt      Point
		readAll bool
		phase   string
	}{
		{Point{}, true, "stable"},
		{AtSeq(20), false, "stable"},
		{AtTime(recs[0].Time.Add(-time.Hour)), true, "none"},
	} {
		r, err := StateAt(context.Background(), src, tc.pt)
		if err != nil {
			t.Fatal(err)
		}
		if r.ReadAll != tc.readAll || r.Phase != tc.phase {
			t.Errorf("state at %s: read all %v, phase %q; want %v, %q", tc.pt, r.ReadAll, r.Phase, tc.readAll, tc.phase)
		}
	}
}

// TestDiffRestartIsNotAMove and reversed points.
func TestDiffRestartIsNotAMove(t *testing.T) {
	src := memSource(t, scenario(t))
	d, err := Diff(context.Background(), src, AtSeq(36), AtSeq(39))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Moves) != 0 || len(d.Restarted) == 0 {
		t.Fatalf("a restart within the grace: %d moves, %d restarted; want 0 moves", len(d.Moves), len(d.Restarted))
	}
	for _, m := range d.Restarted {
		if m.From != "worker-2/1" || m.To != "worker-2/2" {
			t.Errorf("restarted %+v; want worker-2/1 → worker-2/2", m)
		}
	}
	if _, err := Diff(context.Background(), src, AtSeq(30), AtSeq(20)); !errors.Is(err, ErrPointsReversed) {
		t.Errorf("reversed points: %v; want ErrPointsReversed", err)
	}
}

// TestOperatorWording: the protocol a group without a version-set event
// runs is 1, not 0; counts agree with their nouns.
func TestOperatorWording(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{protocolText(0), "1 (not set yet: version 1 rules)"},
		{protocolText(1), "1"},
		{protocolText(2), "2"},
		{plural(0, "change", "changes"), "0 changes"},
		{plural(1, "change", "changes"), "1 change"},
		{plural(8, "change", "changes"), "8 changes"},
		{fmtDuration(1034689640 * time.Nanosecond), "1.035s"},
		{fmtDuration(181*time.Second + 123456789), "3m1.123s"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
