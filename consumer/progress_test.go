package consumer_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/parti-io/parti/consumer"
)

// After a crash, the next owner resumes from the crashed member's progress
// record (written every CommitInterval), not from the partition's own floor
// record (rewritten only every few seconds): the messages processed
// before the last progress record are not handled again.
func TestCrashResumesFromTheProgressRecord(t *testing.T) {
	v := newEnv(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got seen
	cfg := v.config(got.handler())
	cfg.CommitInterval = 20 * time.Millisecond
	a, err := consumer.Join(ctx, v.js, v.member("pr"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	v.publish("p000", 0, 10) // 1..10
	waitUntil(t, 10*time.Second, "every message", func() bool { return got.total() == 10 })
	// The partition's record names the progress subject; wait until the
	// progress record there holds the floor past all ten.
	subj := "parti-floor.PARTI_pr_ORDERS_FLOORS." + base64.RawURLEncoding.EncodeToString([]byte("p000"))
	fs, err := v.js.Stream(ctx, "PARTI_pr_ORDERS_FLOORS")
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	waitUntil(t, 10*time.Second, "the progress record", func() bool {
		m, err := fs.GetLastMsgForSubject(ctx, subj)
		if err != nil {
			return false
		}
		rec = nil
		if json.Unmarshal(m.Data, &rec) != nil {
			return false
		}
		ps, _ := rec["progress"].(string)
		if ps == "" {
			return false
		}
		pm, err := fs.GetLastMsgForSubject(ctx, ps)
		if err != nil {
			return false
		}
		var pr struct {
			Floors [][]any `json:"floors"`
		}
		if json.Unmarshal(pm.Data, &pr) != nil {
			return false
		}
		return slices.ContainsFunc(pr.Floors, func(e []any) bool { return len(e) == 4 && e[0] == "p000" && e[1] == float64(10) })
	})
	a.Stop() // a crash: no final floor
	<-a.Done()
	// As if the partition's own record had lagged: floor 5, same tenure.
	rec["floor"] = 5
	body, _ := json.Marshal(rec)
	if _, err := v.js.Publish(ctx, subj, body); err != nil {
		t.Fatal(err)
	}
	var again seen
	b, err := consumer.Join(ctx, v.js, v.member("pr"), v.config(again.handler()))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Leave(ctx)
	v.publish("p000", 10, 3) // 11..13
	waitUntil(t, 20*time.Second, "the new messages", func() bool { return len(again.get("p000")) >= 3 })
	if g, w := again.get("p000"), bodies("p000", 10, 3); !slices.Equal(g, w) {
		t.Fatalf("the next owner handled %v, want only %v", g, w)
	}
}

// A member whose progress would not fit one message spreads it over
// several records, each within the budget, and every partition's own
// record names the one holding its entry: after a crash, the next owner
// resumes every partition from the progress, whichever record holds it.
func TestProgressIsSplitOverRecordsThatFit(t *testing.T) {
	const budget = 200 // bytes of entries: two entries of these IDs
	consumer.SetProgressBudget(budget)
	defer consumer.SetProgressBudget(0)
	const nparts = 12
	v := newEnv(t, nparts)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got seen
	cfg := v.config(got.handler())
	cfg.CommitInterval = 20 * time.Millisecond
	a, err := consumer.Join(ctx, v.js, v.member("split"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range v.parts {
		v.publish(p, 0, 10)
	}
	waitUntil(t, 10*time.Second, "every message", func() bool { return got.total() == 10*nparts })
	fs, err := v.js.Stream(ctx, "PARTI_split_ORDERS_FLOORS")
	if err != nil {
		t.Fatal(err)
	}
	// Partition i's messages are stream sequences 10i+1..10i+10: its floor
	// is past them (and past the later partitions' too, once its consumer
	// delivered those).
	recs := map[string]map[string]any{}
	chunks := map[string]bool{}
	waitUntil(t, 10*time.Second, "every partition's floor in the progress record its own record names", func() bool {
		clear(chunks)
		for i, p := range v.parts {
			m, err := fs.GetLastMsgForSubject(ctx, "parti-floor.PARTI_split_ORDERS_FLOORS."+base64.RawURLEncoding.EncodeToString([]byte(p)))
			if err != nil {
				return false
			}
			var rec map[string]any
			if json.Unmarshal(m.Data, &rec) != nil {
				return false
			}
			recs[p] = rec
			ps, _ := rec["progress"].(string)
			if ps == "" {
				return false
			}
			pm, err := fs.GetLastMsgForSubject(ctx, ps)
			if err != nil {
				return false
			}
			var pr struct {
				Member string  `json:"member"`
				Floors [][]any `json:"floors"`
			}
			if json.Unmarshal(pm.Data, &pr) != nil {
				return false
			}
			if entries := len(pm.Data) - len(`{"member":"","floors":[]}`) - len(pr.Member); entries > budget {
				t.Fatalf("progress record %s holds %d bytes of entries, over the budget of %d", ps, entries, budget)
			}
			chunks[ps] = true
			if !slices.ContainsFunc(pr.Floors, func(e []any) bool { f, _ := e[1].(float64); return len(e) == 4 && e[0] == p && f >= float64(10*i+10) }) {
				return false
			}
		}
		return true
	})
	if len(chunks) < nparts/2 {
		t.Fatalf("the progress of %d partitions is in %d records, want at least %d at two entries each", nparts, len(chunks), nparts/2)
	}
	a.Stop() // a crash: no final floor
	<-a.Done()
	// As if every partition's own record had lagged by five messages.
	for i, p := range v.parts {
		recs[p]["floor"] = 10*i + 5
		body, _ := json.Marshal(recs[p])
		if _, err := v.js.Publish(ctx, "parti-floor.PARTI_split_ORDERS_FLOORS."+base64.RawURLEncoding.EncodeToString([]byte(p)), body); err != nil {
			t.Fatal(err)
		}
	}
	var again seen
	b, err := consumer.Join(ctx, v.js, v.member("split"), v.config(again.handler()))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Leave(ctx)
	for _, p := range v.parts {
		v.publish(p, 10, 3)
	}
	waitUntil(t, 20*time.Second, "the new messages", func() bool { return again.total() >= 3*nparts })
	for _, p := range v.parts {
		if g, w := again.get(p), bodies(p, 10, 3); !slices.Equal(g, w) {
			t.Errorf("the next owner handled %v of %s, want only %v", g, p, w)
		}
	}
}
