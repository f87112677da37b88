package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/replay/replaytest"
)

// ownersFromChanges replays tl's changes up to sequence seq and returns each
// partition ID's lane ("" when unowned or not declared).
func ownersFromChanges(tl *Timeline, seq uint64) map[string]string {
	cur := make([]int32, len(tl.Partitions))
	for i := range cur {
		cur[i] = LaneUndeclared
	}
	c := &tl.Changes
	for i := range c.T {
		if c.S[i] > seq {
			break
		}
		cur[c.P[i]] = c.L[i]
	}
	out := map[string]string{}
	for g, l := range cur {
		if l >= 0 {
			out[tl.Partitions[g]] = MemberRef(tl.Lanes[l].ID, tl.Lanes[l].Inc)
		}
	}
	return out
}

// checkAgainstFold compares the owners the timeline's changes give with the
// fold's at every log sequence of recs.
func checkAgainstFold(t *testing.T, recs []events.Record, tl *Timeline) {
	t.Helper()
	src := memSource(t, recs)
	var seqs []uint64
	for _, r := range recs {
		if r.Subject == src.Subjects().Log() {
			seqs = append(seqs, r.Seq)
		}
	}
	step := max(1, len(seqs)/40)
	for i := 0; i < len(seqs); i += step {
		seq := seqs[i]
		st, err := StateAt(context.Background(), src, AtSeq(seq))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{}
		for i, o := range st.State.Owners {
			if o.Owner != "" {
				want[st.State.Partitions[i]] = MemberRef(o.Owner, o.Inc)
			}
		}
		got := ownersFromChanges(tl, seq)
		if len(got) != len(want) {
			t.Fatalf("at seq %d the timeline has %d owned partitions, the fold %d", seq, len(got), len(want))
		}
		for id, w := range want {
			if got[id] != w {
				t.Fatalf("at seq %d partition %s: timeline says %q, the fold %q", seq, id, got[id], w)
			}
		}
	}
}

func TestTimelineOfTheScenario(t *testing.T) {
	recs := scenario(t)
	tl, err := BuildTimeline(context.Background(), memSource(t, recs))
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstFold(t, recs, tl)

	lanes := map[string]Lane{}
	for _, l := range tl.Lanes {
		lanes[MemberRef(l.ID, l.Inc)] = l
	}
	for ref, end := range map[string]string{"worker-1/1": "expired", "worker-2/1": "closed", "worker-0/1": ""} {
		l, ok := lanes[ref]
		if !ok {
			t.Fatalf("no lane %s; lanes: %+v", ref, tl.Lanes)
		}
		if l.End != end || (end == "") != (l.To < 0) {
			t.Errorf("lane %s ended %q at %d; want %q", ref, l.End, l.To, end)
		}
	}
	if _, ok := lanes["worker-2/2"]; !ok {
		t.Errorf("no lane for worker-2's restart")
	}
	kinds := map[string]int{}
	for _, m := range tl.Markers {
		kinds[m.Kind]++
	}
	for _, k := range []string{"join", "close", "expired", "decision", "rejected", "operator", "declared"} {
		if kinds[k] == 0 {
			t.Errorf("no %q marker; markers: %v", k, kinds)
		}
	}
	if kinds["join"] != len(tl.Lanes) {
		t.Errorf("%d join markers for %d lanes", kinds["join"], len(tl.Lanes))
	}
}

func TestTimelineOfAGeneratedHistory(t *testing.T) {
	rec := replaytest.NewRecorder(replaytest.Base, time.Millisecond)
	if _, err := replaytest.Generate(replaytest.GenerateConfig{Group: "gen", Members: 12, Partitions: 300, Records: 3000, HeartbeatsPerRound: 3, Seed: 7}, rec); err != nil {
		t.Fatal(err)
	}
	tl, err := BuildTimeline(context.Background(), memSource(t, rec.Records))
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstFold(t, rec.Records, tl)
	if len(tl.Partitions) != 300 {
		t.Errorf("%d partitions; want 300", len(tl.Partitions))
	}
}

// TestReportPageIsSelfContained writes the page and checks it needs no
// network and carries the timeline's data intact.
func TestReportPageIsSelfContained(t *testing.T) {
	recs := scenario(t)
	tl, err := BuildTimeline(context.Background(), memSource(t, recs))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteReport(&buf, tl, ReportOptions{Generated: replaytest.Base}); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*"(https?:)?//`).FindString(page); m != "" {
		t.Errorf("the page loads something from the network: %s", m)
	}
	i := strings.Index(page, "D = {")
	if i < 0 {
		t.Fatal("no embedded data in the page")
	}
	j := strings.Index(page[i:], ";")
	if j < 0 {
		t.Fatal("the embedded data does not end")
	}
	var got PageData
	if err := json.Unmarshal([]byte(page[i+4:i+j]), &got); err != nil {
		t.Fatalf("the embedded data does not parse: %v", err)
	}
	if got.Group != "orders" || len(got.Lanes) != len(tl.Lanes) || len(got.P) != tl.Changes.Len() || got.LastSeq != tl.LastSeq {
		t.Errorf("embedded data: group %q, %d lanes, %d changes, seq %d; want orders, %d, %d, %d",
			got.Group, len(got.Lanes), len(got.P), got.LastSeq, len(tl.Lanes), tl.Changes.Len(), tl.LastSeq)
	}
	var sum int64
	for _, d := range got.DT {
		sum += d
	}
	if last := tl.Changes.T[tl.Changes.Len()-1]; sum != last {
		t.Errorf("the time differences add up to %d; want %d", sum, last)
	}
}
