package replay

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/replay/replaytest"
)

// stateJSON is a state's exported form, for comparisons.
func stateJSON(t testing.TB, s *decider.State) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// foldLog folds the log records of recs with seq ≤ upTo.
func foldLog(recs []events.Record, upTo uint64) *decider.State {
	s := decider.New()
	for _, r := range recs {
		if r.Subject == "parti.orders.log" && r.Seq <= upTo {
			decider.Apply(s, r)
		}
	}
	return s
}

func TestStateAtEverySequence(t *testing.T) {
	recs := scenario(t)
	src := memSource(t, recs)
	for _, r := range recs {
		got, err := StateAt(t.Context(), src, AtSeq(r.Seq))
		if err != nil {
			t.Fatal(err)
		}
		if g, w := stateJSON(t, got.State), stateJSON(t, foldLog(recs, r.Seq)); g != w {
			t.Fatalf("state at %d:\n%s", r.Seq, cmp.Diff(w, g))
		}
		if got.At.Seq > r.Seq || (r.Subject == "parti.orders.log" && got.At.Seq != r.Seq) {
			t.Fatalf("state at %d is at %+v", r.Seq, got.At)
		}
	}
	end, err := StateAt(t.Context(), src, Point{})
	if err != nil {
		t.Fatal(err)
	}
	if g, w := stateJSON(t, end.State), stateJSON(t, foldLog(recs, 1<<62)); g != w {
		t.Fatalf("state at the end:\n%s", cmp.Diff(w, g))
	}
}

// TestStateAtTime checks "the state after the last log record whose server
// time is at or before T", also where the server time steps backwards.
func TestStateAtTime(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	mk := func(seq uint64, sec int, ev events.Event) events.Record {
		return events.NewRecord(seq, at(sec), "parti.g.log", nil, events.MustEncode(1, ev))
	}
	recs := []events.Record{
		mk(1, 10, &events.MemberClaimed{ID: "a", Nonce: "1", MaxProtocol: 1}),
		mk(2, 20, &events.MemberClaimed{ID: "b", Nonce: "2", MaxProtocol: 1}),
		mk(3, 30, &events.MemberClaimed{ID: "c", Nonce: "3", MaxProtocol: 1}),
		mk(4, 25, &events.MemberClaimed{ID: "d", Nonce: "4", MaxProtocol: 1}), // the clock stepped back
		mk(5, 40, &events.MemberClaimed{ID: "e", Nonce: "5", MaxProtocol: 1}),
	}
	src := memSource(t, recs)
	for _, tc := range []struct {
		sec  int
		want uint64 // the last record folded
	}{{5, 0}, {10, 1}, {15, 1}, {20, 2}, {24, 2}, {25, 4}, {29, 4}, {30, 4}, {39, 4}, {40, 5}, {99, 5}} {
		got, err := StateAt(t.Context(), src, AtTime(at(tc.sec)))
		if err != nil {
			t.Fatal(err)
		}
		if got.At.Seq != tc.want || got.State.LastSeq != tc.want {
			t.Errorf("state at +%ds is at seq %d (state %d), want %d", tc.sec, got.At.Seq, got.State.LastSeq, tc.want)
		}
	}
}

func TestParsePoint(t *testing.T) {
	for in, want := range map[string]Point{
		"12": AtSeq(12), "end": {}, "": {},
		"2026-01-02T03:04:05Z":        AtTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
		"2026-01-02T03:04:05.5+01:00": AtTime(time.Date(2026, 1, 2, 2, 4, 5, 5e8, time.UTC)),
	} {
		got, err := ParsePoint(in)
		if err != nil || got.Seq != want.Seq || !got.Time.Equal(want.Time) {
			t.Errorf("ParsePoint(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "-3", "yesterday", "12x"} {
		if _, err := ParsePoint(in); err == nil {
			t.Errorf("ParsePoint(%q) accepted", in)
		}
	}
}

func TestAuditScenarioIsClean(t *testing.T) {
	src := memSource(t, scenario(t))
	rep, err := Audit(t.Context(), src, AuditOptions{MaxUnowned: 30 * time.Second, CheckEvery: 1, verifyEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	// The scenario holds two records no correct member writes: garbage on
	// the log and a stale decision published unfenced. They are
	// violations (issue 12); nothing else is.
	if !onlyScenarioJunk(rep) {
		t.Fatalf("violations: %+v", rep.Violations)
	}
	if rep.Decisions != (DecisionCounts{Accepted: 4, Rejected: 1}) || len(rep.Rejected) != 1 || rep.Rejected[0].Reason != "computed on a different log position" {
		t.Fatalf("decisions %+v, rejected %+v", rep.Decisions, rep.Rejected)
	}
	if rep.Reads.Garbage != 1 || rep.Fold.Skipped != 1 || rep.Fold.Ignored != 1 || rep.Removals != (RemovalCounts{Total: 1, VerdictFound: 1}) {
		t.Fatalf("reads %+v fold %+v removals %+v", rep.Reads, rep.Fold, rep.Removals)
	}
	if rep.Checks.Full != uint64(rep.Reads.Log)+1 {
		t.Fatalf("%d full checks for %d log records", rep.Checks.Full, rep.Reads.Log)
	}
}

func TestAuditFindsViolations(t *testing.T) {
	src := memSource(t, violations(t))
	rep, err := Audit(t.Context(), src, AuditOptions{MaxUnowned: 30 * time.Second, verifyEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Clean {
		t.Fatal("the audit passed a history with violations")
	}
	kinds := map[string]int{}
	for _, v := range rep.Violations {
		kinds[v.Kind]++
		if v.Kind == ViolationUnowned && !v.Approximate {
			t.Errorf("the unowned span crossed a clock step but is not approximate: %+v", v)
		}
	}
	for _, k := range []string{ViolationUnowned, ViolationSequence} {
		if kinds[k] == 0 {
			t.Errorf("no %s violation in %v", k, kinds)
		}
	}
	// The spliced decision (stream sequence 0) once made the fold hand out
	// fencing token 0; the fold now skips a record without a sequence, so
	// the audit flags the splice and the tokens stay monotonic.
	if kinds[ViolationToken] != 0 {
		t.Errorf("the fold handed out a regressing token: %v", kinds)
	}
	if rep.TimeStepsBack != 1 {
		t.Errorf("%d time steps back", rep.TimeStepsBack)
	}
	// Without the bound, the time-based violation goes away, the others
	// stay.
	rep, err = Audit(t.Context(), src, AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range rep.Violations {
		if v.Kind == ViolationUnowned {
			t.Errorf("unowned checked without a bound: %+v", v)
		}
	}
}

// TestAuditTracksGeneratedHistory checks the audit's incremental view of
// every partition against the state after every record, on a random
// history with every kind of churn, and that it finds it clean.
func TestAuditTracksGeneratedHistory(t *testing.T) {
	rec := replaytest.NewRecorder(replaytest.Base, time.Millisecond)
	st, err := replaytest.Generate(replaytest.GenerateConfig{Group: "gen", Members: 8, Partitions: 2500, Records: 4000, HeartbeatsPerRound: 3, Seed: 7}, rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("generated %+v", st)
	multi := 0
	for _, r := range rec.Records {
		if d, ok := r.Event.(*events.AssignmentDecided); ok && d.Parts > 1 {
			multi++
		}
	}
	if multi == 0 {
		t.Fatal("no multi-part decision: the test should cover one")
	}
	src := memSource(t, rec.Records)
	// The automatic interval leaves the incremental checks alone between
	// full ones: verify the view after every record there; with full
	// checks after every record, now and then.
	for _, c := range []struct{ every, verify int }{{0, 1}, {1, 100}} {
		every := c.every
		rep, err := Audit(t.Context(), src, AuditOptions{MaxUnowned: time.Minute, CheckEvery: c.every, verifyEvery: c.verify})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Clean {
			t.Fatalf("check every %d: violations %+v", every, rep.Violations)
		}
		if rep.Decisions.Rejected != 0 || rep.Fold.Skipped != 0 || rep.Fold.Ignored != 0 {
			t.Fatalf("fold %+v decisions %+v", rep.Fold, rep.Decisions)
		}
	}
}

func TestExplainScenario(t *testing.T) {
	ex, err := Explain(t.Context(), memSource(t, scenario(t)), "p-00")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, c := range ex.Changes {
		kinds = append(kinds, c.Kind)
	}
	want := []string{"declared", "assigned", "orphaned", "rejected", "assigned", "takeover", "move-requested", "moved"}
	if !slices.Equal(kinds, want) {
		for _, c := range ex.Changes {
			t.Logf("%d %s %s: %s", c.Seq, c.Event, c.Kind, c.Why)
		}
		t.Fatalf("kinds %v, want %v", kinds, want)
	}
	if ex.Final.Owner != "worker-0" || ex.Index != 0 {
		t.Fatalf("final %+v index %d", ex.Final, ex.Index)
	}
	// A partition nobody declared has no history.
	ex, err = Explain(t.Context(), memSource(t, scenario(t)), "p-99")
	if err != nil || len(ex.Changes) != 0 || ex.Index != -1 {
		t.Fatalf("undeclared: %+v %v", ex, err)
	}
}

func TestDiffScenario(t *testing.T) {
	src := memSource(t, scenario(t))
	d, err := Diff(t.Context(), src, AtSeq(20), Point{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Joined, []string{"worker-2/2"}) || !slices.Equal(d.Left, []string{"worker-1/1", "worker-2/1", "worker-3/1"}) {
		t.Fatalf("joined %v left %v", d.Joined, d.Left)
	}
	a, _ := StateAt(t.Context(), src, AtSeq(20))
	b, _ := StateAt(t.Context(), src, Point{})
	n := 0
	for i, o := range b.State.Owners {
		p := a.State.Owners[i]
		if o.Owner != p.Owner || o.Inc != p.Inc {
			n++
		}
	}
	// A restart's takeover (same ID, new incarnation) is listed apart.
	if len(d.Moves)+len(d.Restarted) != n || n == 0 {
		t.Fatalf("%d moves and %d restarts listed, %d partitions changed owner", len(d.Moves), len(d.Restarted), n)
	}
	n -= len(d.Restarted)
	sum := 0
	for _, p := range d.MovesByPair {
		sum += p.Count
	}
	if sum != n {
		t.Fatalf("pairs sum to %d, want %d", sum, n)
	}
	if _, err := Diff(t.Context(), src, AtSeq(30), AtSeq(20)); err == nil {
		t.Fatal("a reversed diff was accepted")
	}
}

// TestWhatIfSameStrategyMatchesRecord: refolding under the declared
// strategy, with releases as prompt as the recorded ones, decides exactly
// what was recorded.
func TestWhatIfSameStrategyMatchesRecord(t *testing.T) {
	rep, err := WhatIf(t.Context(), memSource(t, scenario(t)), WhatIfOptions{Strategy: "sticky"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Points) != 4 || len(rep.Notes) != 0 {
		t.Fatalf("%d points, notes %v", len(rep.Points), rep.Notes)
	}
	for _, p := range rep.Points {
		if p.Recorded != p.WhatIf {
			t.Errorf("seq %d (%s): recorded %+v, what-if %+v", p.Seq, p.Reason, p.Recorded, p.WhatIf)
		}
	}
	if rep.Recorded != rep.WhatIf {
		t.Errorf("totals: recorded %+v, what-if %+v", rep.Recorded, rep.WhatIf)
	}
	if _, err := WhatIf(t.Context(), memSource(t, scenario(t)), WhatIfOptions{Strategy: "nope"}); err == nil {
		t.Fatal("an unknown strategy was accepted")
	}
}

func TestWhatIfWindowZeroRebalancesEveryJoin(t *testing.T) {
	zero := time.Duration(0)
	rep, err := WhatIf(t.Context(), memSource(t, scenario(t)), WhatIfOptions{Window: &zero})
	if err != nil {
		t.Fatal(err)
	}
	windows := 0
	for _, p := range rep.Points {
		if p.Reason == "window" {
			windows++
		}
	}
	// Only the scale window (worker-3's claim) closes with something to
	// decide: the cold-start windows close before the declaration.
	if windows != 1 {
		t.Fatalf("%d what-if window closes: %+v", windows, rep.Points)
	}
}

func TestTailFilters(t *testing.T) {
	src := memSource(t, scenario(t))
	collect := func(opts TailOptions) []*TailEvent {
		var out []*TailEvent
		if err := Tail(t.Context(), src, opts, func(e *TailEvent) error { out = append(out, e); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if all := collect(TailOptions{}); len(all) != len(scenario(t)) {
		t.Fatalf("%d of %d records", len(all), len(scenario(t)))
	}
	for _, e := range collect(TailOptions{Member: "worker-1"}) {
		if e.Type == "heartbeat" && e.Subject != "parti.orders.hb.worker-1.1" {
			t.Errorf("member filter let through %s", e.Text())
		}
	}
	for _, e := range collect(TailOptions{Types: []string{"assignment-decided,expiry-verdict"}}) {
		if e.Type != "assignment-decided" && e.Type != "expiry-verdict" {
			t.Errorf("type filter let through %s", e.Text())
		}
	}
	got := collect(TailOptions{Partition: "p-00"})
	var types []string
	for _, e := range got {
		types = append(types, e.Type)
	}
	want := []string{"partitions-declared", "assignment-decided", "assignment-decided", "assignment-decided", "operator-action", "partitions-released"}
	if !slices.Equal(types, want) {
		for _, e := range got {
			t.Log(e.Text())
		}
		t.Fatalf("partition filter: %v, want %v", types, want)
	}
	if err := Tail(t.Context(), src, TailOptions{Types: []string{"hearbeat"}}, func(*TailEvent) error { return nil }); err == nil {
		t.Fatal("an unknown type was accepted")
	}
}

// TestAuditRedeclarations re-declares the set — reordered, with partitions
// dropped, added and declared again (one while its owner is still there,
// one after its owner crashed) — and checks the audit follows every
// partition by ID and finds the history clean.
func TestAuditRedeclarations(t *testing.T) {
	rec := replaytest.NewRecorder(replaytest.Base, replaytest.Step)
	b, err := replaytest.NewBuilder("orders", rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"worker-0", "worker-1", "worker-2"} {
		b.Claim(id)
	}
	ids := replaytest.PartitionIDs(12)
	b.Declare(ids, "sticky", 0)
	b.CloseWindow(100)
	b.Decide()
	owner := func(id string) string {
		i, _ := b.State.PartitionIndex(id)
		return b.State.Owners[i].Owner
	}
	dropped := []string{"p-00", "p-03", "p-08"}
	var v2 []string
	for i := len(ids) - 1; i >= 0; i-- { // reversed: every index changes
		if !slices.Contains(dropped, ids[i]) {
			v2 = append(v2, ids[i])
		}
	}
	v2 = append(v2, "p-12", "p-13")
	// The owner of p-00 is not the leader (the sticky placement of this
	// scenario): it crashes while p-00 is dropped, so p-00 comes back
	// unowned; p-03's owner stays, so p-03 comes back to it.
	gone := owner("p-00")
	if gone == "worker-0" || owner("p-03") == gone {
		t.Fatalf("the placement changed: p-03 on %s, p-00 on %s", owner("p-03"), gone)
	}
	b.Declare(v2, "", 0)
	b.Decide()
	b.Heartbeat(gone)
	b.Crash(gone, 6000)
	b.Decide()
	b.Declare(append(v2, "p-03", "p-00"), "", 0)
	b.Decide()
	if b.Err() != nil {
		t.Fatal(b.Err())
	}
	src := memSource(t, rec.Records)
	rep, err := Audit(t.Context(), src, AuditOptions{MaxUnowned: time.Minute, CheckEvery: 1, verifyEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean {
		t.Fatalf("violations: %+v", rep.Violations)
	}
	ex, err := Explain(t.Context(), src, "p-03")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, c := range ex.Changes {
		kinds = append(kinds, c.Kind)
	}
	if len(kinds) < 4 || kinds[0] != "declared" || !slices.Contains(kinds, "dropped") || kinds[len(kinds)-1] != "declared" || ex.Final.Owner != "worker-0" {
		for _, c := range ex.Changes {
			t.Logf("%d %s %s: %s", c.Seq, c.Event, c.Kind, c.Why)
		}
		t.Fatalf("p-03: %v, final %+v", kinds, ex.Final)
	}
}

func zoneScenario(t testing.TB) []events.Record {
	t.Helper()
	rec := replaytest.NewRecorder(replaytest.Base, replaytest.Step)
	b, err := replaytest.NewBuilder("zones", rec)
	if err != nil {
		t.Fatal(err)
	}
	replaytest.ZoneScenario(b)
	if b.Err() != nil {
		t.Fatal(b.Err())
	}
	return rec.Records
}

// TestWhatIfFailZone: losing zone a moves only what zone a held and spreads
// it; losing zone c (the only zone the constrained partitions may use)
// leaves them unplaceable, and says which label they require.
func TestWhatIfFailZone(t *testing.T) {
	rep, err := WhatIf(t.Context(), memSource(t, zoneScenario(t)), WhatIfOptions{FailZone: "a"})
	if err != nil {
		t.Fatal(err)
	}
	z := rep.ZoneLoss
	if z == nil || len(z.Members) != 2 || z.Held == 0 {
		t.Fatalf("zone loss %+v", z)
	}
	if z.Moved != z.Held || z.MovedOverMin != 1 {
		t.Errorf("losing zone a moved %d, the zone held %d", z.Moved, z.Held)
	}
	if z.BalanceAfter == 0 || z.BalanceAfter > 1.25 || len(z.Unplaceable) != 0 {
		t.Errorf("after losing zone a: balance %.3f, unplaceable %v", z.BalanceAfter, z.Unplaceable)
	}

	rep, err = WhatIf(t.Context(), memSource(t, zoneScenario(t)), WhatIfOptions{FailZone: "zone=c"})
	if err != nil {
		t.Fatal(err)
	}
	z = rep.ZoneLoss
	if len(z.Unplaceable) != 5 || z.Unplaceable[0].Partition != "p-10" || !slices.Equal(z.Unplaceable[0].Require, []string{"zone=c"}) {
		t.Fatalf("after losing zone c: unplaceable %+v, want p-10 to p-14 requiring zone=c", z.Unplaceable)
	}
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "p-10 requires zone=c") {
		t.Errorf("text report does not name the constraint:\n%s", b.String())
	}

	rep, err = WhatIf(t.Context(), memSource(t, zoneScenario(t)), WhatIfOptions{FailZone: "d"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ZoneLoss.Held != 0 || len(rep.Notes) == 0 {
		t.Errorf("an unknown zone: %+v, notes %v", rep.ZoneLoss, rep.Notes)
	}
}

// TestExplainPlacement: the zoned history, then zone c lost (both its
// members crash) and zone a lost and back. explain says "moved: zone c
// lost" for a partition zone c held, names the zone=c constraint of one no
// member may own now, and says "moved back: affinity to zone a" for a
// partition preferring zone a when zone a returns.
func TestExplainPlacement(t *testing.T) {
	rec := replaytest.NewRecorder(replaytest.Base, replaytest.Step)
	b, err := replaytest.NewBuilder("zones", rec)
	if err != nil {
		t.Fatal(err)
	}
	replaytest.ZoneScenario(b)
	owner := func(p string) string {
		i, _ := b.State.PartitionIndex(p)
		return b.State.Owners[i].Owner
	}
	var unconstrainedOnC string
	for i := 15; i < 60 && unconstrainedOnC == ""; i++ {
		if p := fmt.Sprintf("p-%02d", i); owner(p) == "zone-c-2" {
			unconstrainedOnC = p
		}
	}
	b.Crash("zone-c-2", 6100)
	b.Decide()
	b.Crash("zone-a-1", 6100)
	b.Crash("zone-a-2", 6100)
	b.Decide()
	b.ClaimPlaced("zone-a-1", 2, "zone=a")
	b.ClaimPlaced("zone-a-2", 1, "zone=a")
	b.CloseWindow(100)
	b.Decide()
	if b.Err() != nil {
		t.Fatal(b.Err())
	}
	src := memSource(t, rec.Records)
	why := func(p string) string {
		ex, err := Explain(t.Context(), src, p)
		if err != nil {
			t.Fatal(err)
		}
		var all []string
		for _, c := range ex.Changes {
			all = append(all, c.Why)
		}
		return strings.Join(all, "\n")
	}
	if unconstrainedOnC == "" {
		t.Fatal("zone-c-2 owned no unconstrained partition")
	}
	if w := why(unconstrainedOnC); !strings.Contains(w, "moved: zone c lost") {
		t.Errorf("%s (zone c held it):\n%s", unconstrainedOnC, w)
	}
	if w := why("p-10"); !strings.Contains(w, "no eligible member has zone=c") {
		t.Errorf("p-10 (requires zone=c):\n%s", w)
	}
	back := 0
	for i := range 10 { // p-00..p-09 prefer zone a
		if strings.Contains(why(fmt.Sprintf("p-%02d", i)), "moved back: affinity to zone a") {
			back++
		}
	}
	if back == 0 {
		t.Errorf("no partition preferring zone a says it moved back by affinity")
	}
}

// TestAuditUnplaceable: when zone c is lost, its required partitions stay
// unowned past the bound: the audit lists them as unplaceable, naming the
// constraint, and stays clean.
func TestAuditUnplaceable(t *testing.T) {
	rec := replaytest.NewRecorder(replaytest.Base, replaytest.Step)
	b, err := replaytest.NewBuilder("zones", rec)
	if err != nil {
		t.Fatal(err)
	}
	replaytest.ZoneScenario(b)
	b.Crash("zone-c-2", 6100)
	b.Decide()
	rec.Advance(2 * time.Minute)
	b.Heartbeats()
	if b.Err() != nil {
		t.Fatal(b.Err())
	}
	rep, err := Audit(t.Context(), memSource(t, rec.Records), AuditOptions{MaxUnowned: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean || len(rep.Unplaceable) != 5 {
		t.Fatalf("clean %v, violations %+v, unplaceable %+v", rep.Clean, rep.Violations, rep.Unplaceable)
	}
	if u := rep.Unplaceable[0]; u.Partition != "p-10" || !slices.Equal(u.Require, []string{"zone=c"}) || !u.Open {
		t.Errorf("first unplaceable span %+v", u)
	}
	var text strings.Builder
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "no eligible member had zone=c") {
		t.Errorf("audit text does not name the constraint:\n%s", text.String())
	}
}

// onlyScenarioJunk reports whether rep's violations are exactly the two
// records of replaytest.Scenario that no correct member writes: the garbage
// on the log and the stale decision published unfenced.
func onlyScenarioJunk(rep *AuditReport) bool {
	if rep.Clean || rep.ViolationCount != 2 || len(rep.Violations) != 2 {
		return false
	}
	g, d := rep.Violations[0], rep.Violations[1]
	return g.Kind == ViolationRecord && strings.Contains(g.Message, "undecodable") &&
		d.Kind == ViolationRecord && strings.Contains(d.Message, "rejected")
}
