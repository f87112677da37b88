package projection

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
)

// Migrate carries the old log's fold into a genesis on a new stream that
// numbers after the old one; the new log folds to the same state, a member
// of an old ID takes its partitions back with zero moves and higher tokens;
// and Migrate refuses a group with live members, a target that has records
// and a group migrated onto itself.
func TestMigrateStartsANewGenerationFromTheOldFold(t *testing.T) {
	ts := runServer(t)
	_, js := ts.connect(t)
	ctx := testCtx(t)
	if _, err := Provision(ctx, js, StreamConfig{Group: "old"}); err != nil {
		t.Fatal(err)
	}
	oldSubj, _ := events.NewSubjects("old")
	h := newHarness(t, NewAppender(js, oldSubj))
	h.scenario()

	_, err := Migrate(ctx, js, MigrateConfig{From: "old", To: "new"})
	if !errors.Is(err, ErrLiveMembers) {
		t.Fatalf("migrating a live group: %v, want ErrLiveMembers", err)
	}
	if _, err := js.Stream(ctx, StreamName("new")); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("a refused migration left stream %s behind: %v", StreamName("new"), err)
	}
	if _, err := Migrate(ctx, js, MigrateConfig{From: "old", To: "old"}); err == nil {
		t.Fatal("migrated a group onto itself")
	}

	for _, m := range h.local.LiveMembers() {
		h.append(&events.MemberClosing{Member: m.ID, Incarnation: m.Incarnation})
	}
	h.heartbeat("worker-0") // the old stream's last sequence is past its log's
	res, err := Migrate(ctx, js, MigrateConfig{From: "old", To: "new", By: "test", Note: "compaction", ChunkBytes: 300})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *res)
	oldInfo, _ := js.Stream(ctx, StreamName("old"))
	oi, err := oldInfo.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case res.UpTo != h.local.LastSeq:
		t.Fatalf("genesis up to %d, the old log ends at %d", res.UpTo, h.local.LastSeq)
	case res.GenesisFirst != oi.State.LastSeq+1:
		t.Fatalf("genesis at %d, want right after the old stream's last sequence %d", res.GenesisFirst, oi.State.LastSeq)
	case res.Parts < 2 || res.GenesisLast != res.GenesisFirst+uint64(res.Parts)-1:
		t.Fatalf("genesis of %d parts at %d..%d, want several contiguous ones", res.Parts, res.GenesisFirst, res.GenesisLast)
	case res.Records != uint64(h.records):
		t.Fatalf("folded %d old records, %d were appended", res.Records, h.records)
	}
	if _, hash, _ := decider.Snapshot(h.local); hash != res.Hash {
		t.Fatalf("genesis hash %s, the old fold's is %s", res.Hash, hash)
	}

	// The new log folds to the old state.
	newSubj, _ := events.NewSubjects("new")
	nh := newHarness(t, NewAppender(js, newSubj))
	p := startProjection(t, nh, Config{Group: "new"})
	if err := p.WaitFor(ctx, res.GenesisLast); err != nil {
		t.Fatal(err)
	}
	got := p.State()
	ignore := cmpopts.IgnoreFields(decider.State{}, "LastSeq", "Counters")
	if diff := cmp.Diff(h.local, got, stateOpts, ignore); diff != "" {
		t.Fatalf("new generation's state (-old +new):\n%s", diff)
	}
	if got.LastSeq != res.GenesisLast {
		t.Fatalf("new fold at %d, want %d", got.LastSeq, res.GenesisLast)
	}
	if st, _ := js.Stream(ctx, StreamName("new")); st != nil {
		if cfg := st.CachedInfo().Config; !cfg.DenyDelete || !cfg.DenyPurge || cfg.AllowRollup {
			t.Fatalf("new stream's settings: %+v", cfg)
		}
	}

	// An old ID comes back in the new generation: zero moves.
	nh.local = got.Clone()
	before := got.Clone()
	nh.append(claim("worker-0", "nonce-new-0"))
	w0 := nh.local.Members["worker-0"]
	if w0 == nil || w0.Nonce != "nonce-new-0" {
		t.Fatalf("worker-0 not granted in the new generation: %+v", w0)
	}
	for i, o := range nh.local.Owners {
		b := before.Owners[i]
		if o.Owner != b.Owner {
			t.Fatalf("partition %d moved from %s to %s", i, b.Owner, o.Owner)
		}
		if o.Owner == "worker-0" && o.Token <= res.UpTo {
			t.Fatalf("partition %d: token %d after the takeover is not above the old log's %d", i, o.Token, res.UpTo)
		}
	}
	caughtUp(t, p, nh)
	sameState(t, "after the takeover", nh.local, p.State())

	_, err = Migrate(ctx, js, MigrateConfig{From: "old", To: "new"})
	if !errors.Is(err, ErrTargetNotEmpty) {
		t.Fatalf("migrating into a stream with records: %v, want ErrTargetNotEmpty", err)
	}
}

// With AllowLive, a group whose members still run is migrated as it is: the
// live members are carried (and are expired in the new generation, where
// nobody heartbeats for them).
func TestMigrateAllowLiveCarriesLiveMembers(t *testing.T) {
	ts := runServer(t)
	_, js := ts.connect(t)
	ctx := testCtx(t)
	if _, err := Provision(ctx, js, StreamConfig{Group: "old"}); err != nil {
		t.Fatal(err)
	}
	subj, _ := events.NewSubjects("old")
	h := newHarness(t, NewAppender(js, subj))
	h.scenario()
	res, err := Migrate(ctx, js, MigrateConfig{From: "old", To: "new", AllowLive: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Members) != 3 || res.Members[0] != "worker-0/1 live" || res.Parts != 1 {
		t.Fatalf("%+v", *res)
	}
	nsubj, _ := events.NewSubjects("new")
	p := startProjection(t, newHarness(t, NewAppender(js, nsubj)), Config{Group: "new"})
	if err := p.WaitFor(ctx, res.GenesisLast); err != nil {
		t.Fatal(err)
	}
	if got := len(p.State().LiveMembers()); got != 3 {
		t.Fatalf("%d live members carried, want 3", got)
	}
}
