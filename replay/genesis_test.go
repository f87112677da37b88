package replay

import (
	"bytes"
	"strings"
	"testing"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/replay/replaytest"
)

// generations returns the history of group "orders" (the scenario, then
// every live member closed for a restart) and of its new generation
// "orders2": a genesis in parts of chunk bytes, the old IDs claimed again,
// then worker-4 joining.
func generations(t *testing.T, chunk int) (old, next []events.Record) {
	t.Helper()
	rec := replaytest.NewRecorder(replaytest.Base, replaytest.Step)
	b, err := replaytest.NewBuilder("orders", rec)
	if err != nil {
		t.Fatal(err)
	}
	replaytest.Scenario(b)
	for _, m := range b.State.LiveMembers() {
		b.CloseForRestart(m.ID)
	}
	if b.Err() != nil {
		t.Fatal(b.Err())
	}
	nrec := replaytest.NewRecorder(rec.Records[len(rec.Records)-1].Time.Add(replaytest.Step), replaytest.Step)
	nrec.SkipTo(rec.Records[len(rec.Records)-1].Seq + 1)
	nb, err := replaytest.NewBuilder("orders2", nrec)
	if err != nil {
		t.Fatal(err)
	}
	nb.Genesis("orders", b.State, chunk)
	for _, id := range []string{"worker-0", "worker-2"} {
		nb.Claim(id)
	}
	nb.Heartbeats()
	nb.Claim("worker-4")
	nb.CloseWindow(1000)
	nb.Decide()
	nb.Heartbeats()
	if nb.Err() != nil {
		t.Fatal(nb.Err())
	}
	return rec.Records, nrec.Records
}

// The audit of a new generation reports its genesis; given the old
// generation's history it checks the genesis against the old fold, and
// flags a genesis that does not match it, an old log that went on after
// it, and a genesis that does not apply.
func TestAuditChecksTheGenesisAgainstThePreviousGeneration(t *testing.T) {
	old, next := generations(t, 256)
	rep, err := Audit(t.Context(), memSource(t, next), AuditOptions{Previous: memSource(t, old), verifyEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	g := rep.Genesis
	if !rep.Clean || g == nil || !g.Applied || !g.Matches || g.Parts < 2 {
		var b bytes.Buffer
		rep.WriteText(&b)
		t.Fatalf("audit of the new generation:\n%s", b.String())
	}
	var txt bytes.Buffer
	if err := rep.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(txt.String(), "genesis: seq ") || !strings.Contains(txt.String(), "matches ") {
		t.Fatalf("text report does not show the genesis:\n%s", txt.String())
	}
	t.Log(strings.SplitN(txt.String(), "final:", 2)[0])
	// The old IDs took their partitions back with zero moves, above every
	// old token.
	ex, err := Explain(t.Context(), memSource(t, next), "p-05")
	if err != nil {
		t.Fatal(err)
	}
	if len(ex.Changes) < 2 || ex.Changes[0].Kind != "genesis" {
		t.Fatalf("explain p-05 in the new generation: %+v", ex.Changes)
	}
	for _, c := range ex.Changes[1:] {
		if c.After.Token <= g.UpTo && c.After.Owner != "" {
			t.Fatalf("p-05 got token %d in the new generation, not above the old log's %d", c.After.Token, g.UpTo)
		}
	}

	cases := []struct {
		name string
		old  []events.Record
		next []events.Record
		want string
	}{
		{"old log went on", append(old[:len(old):len(old)], record(old[len(old)-1].Seq+1, "parti.orders.log",
			&events.OperatorAction{Action: events.OpPause, By: "late"})), next,
			"the old log went on after the genesis"},
		{"different old history", old[:len(old)-1], next, "no record there"},
		{"tampered genesis", old, tamper(t, next), "was not applied: genesis state does not verify"},
		{"no genesis", old, old, "does not start with a genesis"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep, err := Audit(t.Context(), memSource(t, c.next), AuditOptions{Previous: memSource(t, c.old)})
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, v := range rep.Violations {
				found = found || v.Kind == ViolationGenesis && strings.Contains(v.Message, c.want)
			}
			if rep.Clean || !found {
				t.Fatalf("want a genesis violation %q, got %+v", c.want, rep.Violations)
			}
		})
	}
}

func record(seq uint64, subject string, ev events.Event) events.Record {
	return events.NewRecord(seq, replaytest.Base, subject, nil, events.MustEncode(events.MaxVersion, ev))
}

// tamper flips one owner in the genesis's state (and keeps its hash).
func tamper(t *testing.T, recs []events.Record) []events.Record {
	t.Helper()
	out := append([]events.Record(nil), recs...)
	var data []byte
	var idx []int
	for i, r := range out {
		if g, ok := r.Event.(*events.Genesis); ok {
			data = append(data, g.State...)
			idx = append(idx, i)
		}
	}
	changed := bytes.Replace(data, []byte(`"owner":"worker-0"`), []byte(`"owner":"worker-2"`), 1)
	if bytes.Equal(changed, data) {
		t.Fatal("nothing to tamper with")
	}
	if len(changed) != len(data) {
		t.Fatal("tampering changed the length")
	}
	off := 0
	for _, i := range idx {
		g := *out[i].Event.(*events.Genesis)
		g.State = changed[off : off+len(g.State)]
		off += len(g.State)
		out[i] = events.NewRecord(out[i].Seq, out[i].Time, out[i].Subject, out[i].Header, events.MustEncode(events.MaxVersion, &g))
	}
	return out
}

// A genesis in the middle of a log is refused by the fold and flagged.
func TestAuditFlagsAGenesisInTheMiddleOfALog(t *testing.T) {
	old, _ := generations(t, 1<<20)
	s := decider.New()
	for _, r := range old {
		if r.Subject == "parti.orders.log" {
			decider.Apply(s, r)
		}
	}
	gen, err := decider.NewGenesis(s, "elsewhere", "PARTI_elsewhere", 1<<20, "mallory", "")
	if err != nil {
		t.Fatal(err)
	}
	g := *gen[0]
	g.UpTo = 1 // would come before this record
	recs := append(old[:len(old):len(old)], record(old[len(old)-1].Seq+1, "parti.orders.log", &g))
	rep, err := Audit(t.Context(), memSource(t, recs), AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range rep.Violations {
		found = found || (v.Kind == ViolationGenesis && strings.Contains(v.Message, "genesis after the start of the log"))
	}
	if rep.Clean || !found {
		t.Fatalf("violations: %+v", rep.Violations)
	}
}

// What-if refolds a new generation from the state its genesis carries.
func TestWhatIfStartsFromTheGenesis(t *testing.T) {
	_, next := generations(t, 256)
	rep, err := WhatIf(t.Context(), memSource(t, next), WhatIfOptions{Strategy: "round-robin"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Notes) != 0 || rep.WhatIf.FinalMax == 0 {
		t.Fatalf("what-if of the new generation: notes %v, totals %+v", rep.Notes, rep.WhatIf)
	}
}
