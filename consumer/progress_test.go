package consumer_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"maps"
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
	a := v.joinCommitting(ctx, "pr", got.handler())
	v.publish("p000", 0, 10) // 1..10
	waitUntil(t, 10*time.Second, "every message", func() bool { return got.total() == 10 })
	// The partition's record names the progress subject; wait until the
	// progress record there holds the floor past all ten.
	var pr progressRead
	waitUntil(t, 10*time.Second, "the progress record", func() bool {
		var ok bool
		pr, ok = readProgress(ctx, v, "pr", "p000")
		return ok && pr.holds("p000", 10)
	})
	a.Stop() // a crash: no final floor
	<-a.Done()
	// As if the partition's own record had lagged: floor 5, same tenure.
	pr.lagFloor(ctx, v, 5)
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
	a := v.joinCommitting(ctx, "split", got.handler())
	for _, p := range v.parts {
		v.publish(p, 0, 10)
	}
	waitUntil(t, 10*time.Second, "every message", func() bool { return got.total() == 10*nparts })
	// Partition i's messages are stream sequences 10i+1..10i+10: its floor
	// is past them (and past the later partitions' too, once its consumer
	// delivered those).
	prs := map[string]progressRead{}
	chunks := map[string]bool{}
	waitUntil(t, 10*time.Second, "every partition's floor in the progress record its own record names", func() bool {
		clear(chunks)
		for i, p := range v.parts {
			pr, ok := readProgress(ctx, v, "split", p)
			if !ok {
				return false
			}
			prs[p] = pr
			if entries := pr.size - len(`{"member":"","floors":[]}`) - len(pr.member); entries > budget {
				t.Fatalf("progress record %s holds %d bytes of entries, over the budget of %d", pr.subject, entries, budget)
			}
			chunks[pr.subject] = true
			if !pr.holds(p, 10*i+10) {
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
		prs[p].lagFloor(ctx, v, 10*i+5)
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

// progressRead is a partition's floor record and the progress record it
// names, as the floor stream holds them.
type progressRead struct {
	floorSubj string         // the partition's floor subject
	rec       map[string]any // its floor record
	subject   string         // the progress subject the record names
	size      int            // the progress record's bytes
	member    string
	floors    [][]any // [partition, floor, token seq, token incarnation]
}

// readProgress reads partition's floor record in group's floor stream and
// the progress record it names; false until both exist and decode.
func readProgress(ctx context.Context, v *env, group, partition string) (progressRead, bool) {
	stream := "PARTI_" + group + "_ORDERS_FLOORS"
	fs, err := v.js.Stream(ctx, stream)
	if err != nil {
		return progressRead{}, false
	}
	r := progressRead{floorSubj: "parti-floor." + stream + "." + base64.RawURLEncoding.EncodeToString([]byte(partition))}
	m, err := fs.GetLastMsgForSubject(ctx, r.floorSubj)
	if err != nil || json.Unmarshal(m.Data, &r.rec) != nil {
		return progressRead{}, false
	}
	if r.subject, _ = r.rec["progress"].(string); r.subject == "" {
		return progressRead{}, false
	}
	pm, err := fs.GetLastMsgForSubject(ctx, r.subject)
	if err != nil {
		return progressRead{}, false
	}
	var body struct {
		Member string  `json:"member"`
		Floors [][]any `json:"floors"`
	}
	if json.Unmarshal(pm.Data, &body) != nil {
		return progressRead{}, false
	}
	r.size, r.member, r.floors = len(pm.Data), body.Member, body.Floors
	return r, true
}

// holds reports whether the progress record has partition's floor at or
// past floor.
func (r progressRead) holds(partition string, floor int) bool {
	return slices.ContainsFunc(r.floors, func(e []any) bool {
		f, _ := e[1].(float64)
		return len(e) == 4 && e[0] == partition && f >= float64(floor)
	})
}

// lagFloor rewrites the partition's floor record with floor, the same
// tenure otherwise: as if its own record had lagged behind the progress.
func (r progressRead) lagFloor(ctx context.Context, v *env, floor int) {
	v.t.Helper()
	rec := maps.Clone(r.rec)
	rec["floor"] = floor
	body, _ := json.Marshal(rec)
	if _, err := v.js.Publish(ctx, r.floorSubj, body); err != nil {
		v.t.Fatal(err)
	}
}

// A progress record rewritten because one partition moved still carries
// the floors of the others that moved before and whose own records were
// not written since: the committer keeps every such partition listed, not
// only those that moved in the last interval.
func TestProgressKeepsEveryUnwrittenFloor(t *testing.T) {
	v := newEnv(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got seen
	a := v.joinCommitting(ctx, "keep", got.handler())
	v.publish("p000", 0, 5) // 1..5
	var first progressRead
	waitUntil(t, 10*time.Second, "p000's floor in the progress record", func() bool {
		var ok bool
		first, ok = readProgress(ctx, v, "keep", "p000")
		return ok && first.holds("p000", 5)
	})
	v.publish("p001", 0, 5) // 6..10: only p001 moves now
	var second progressRead
	waitUntil(t, 10*time.Second, "p001's floor in the progress record", func() bool {
		var ok bool
		second, ok = readProgress(ctx, v, "keep", "p001")
		return ok && second.holds("p001", 10)
	})
	if second.subject != first.subject {
		t.Fatalf("one member's two partitions in two progress records (%s, %s)", first.subject, second.subject)
	}
	again, _ := readProgress(ctx, v, "keep", "p000")
	if !again.holds("p000", 5) {
		t.Fatalf("the progress record written after p001 moved dropped p000's floor: %v", again.floors)
	}
	a.Stop() // a crash
	<-a.Done()
	first.lagFloor(ctx, v, 0)
	second.lagFloor(ctx, v, 0)
	var next seen
	b, err := consumer.Join(ctx, v.js, v.member("keep"), v.config(next.handler()))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Leave(ctx)
	v.publish("p000", 5, 1)
	v.publish("p001", 5, 1)
	waitUntil(t, 20*time.Second, "the new messages", func() bool { return next.total() >= 2 })
	for _, p := range v.parts {
		if g, w := next.get(p), bodies(p, 5, 1); !slices.Equal(g, w) {
			t.Errorf("the next owner handled %v of %s, want only %v", g, p, w)
		}
	}
}

// joinCommitting joins a member of group whose progress records are
// written every 20 ms.
func (v *env) joinCommitting(ctx context.Context, group string, h consumer.Handler) *consumer.Consumer {
	v.t.Helper()
	cfg := v.config(h)
	cfg.CommitInterval = 20 * time.Millisecond
	c, err := consumer.Join(ctx, v.js, v.member(group), cfg)
	if err != nil {
		v.t.Fatal(err)
	}
	return c
}

// Junk on the progress subject a partition's record names (what a process
// allowed to write the floor stream could publish) costs repeats, never a
// skip: the next owner resumes from the partition's own floor.
func TestJunkProgressRecordFallsBackToTheOwnFloor(t *testing.T) {
	v := newEnv(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got seen
	a := v.joinCommitting(ctx, "junk", got.handler())
	v.publish("p000", 0, 10) // 1..10
	var pr progressRead
	waitUntil(t, 10*time.Second, "the progress record", func() bool {
		var ok bool
		pr, ok = readProgress(ctx, v, "junk", "p000")
		return ok && pr.holds("p000", 10)
	})
	a.Stop() // a crash
	<-a.Done()
	pr.lagFloor(ctx, v, 5)
	for _, body := range []string{"garbage{", `{"floors":[["p000","x",1,1]]}`, `{"floors":[["p000",99]]}`} {
		if _, err := v.js.Publish(ctx, pr.subject, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	var next seen
	b, err := consumer.Join(ctx, v.js, v.member("junk"), v.config(next.handler()))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Leave(ctx)
	v.publish("p000", 10, 2) // 11..12
	// From the own floor (5): messages 6..10 again, then the new ones.
	want := bodies("p000", 5, 7)
	waitUntil(t, 20*time.Second, "the messages after the own floor", func() bool { return len(next.get("p000")) >= len(want) })
	if g := next.get("p000"); !slices.Equal(g, want) {
		t.Fatalf("the next owner handled %v, want %v", g, want)
	}
}
