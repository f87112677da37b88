package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
)

// increasing reports whether seqs holds no sequence twice, in increasing
// order.
func increasing(seqs []uint64) bool {
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			return false
		}
	}
	return true
}

func TestFold(t *testing.T) {
	ts := runServer(t)
	_, js := ts.connect(t)
	app, _ := newGroup(t, js, "g")
	h := newHarness(t, app)

	// Half the history exists before the projection starts (catch-up), half
	// arrives while it tails.
	h.append(claim("", "early-0"))
	h.heartbeat("worker-0")
	h.append(claim("", "early-1"))

	var rec recorder
	p := startProjection(t, h, Config{OnRecord: rec.hook})
	notify, unsubscribe := p.Notify()
	defer unsubscribe()

	h.scenario()
	caughtUp(t, p, h)
	sameState(t, "after the scenario", h.local, p.State())
	p.View(func(s *decider.State) { sameState(t, "View", h.local, s) })

	if n, err := p.Newest(h.ctx); err != nil || n != h.local.LastSeq {
		t.Errorf("Newest = %d, %v; want %d", n, err, h.local.LastSeq)
	}
	st := p.Stats()
	c := h.local.Counters
	if st.Applied != c.Applied || st.Skipped != c.Skipped || st.Ignored != c.Ignored || st.Rejected != c.Rejected {
		t.Errorf("stats %+v, local counters %+v", st, c)
	}
	if st.LastApplied != h.local.LastSeq || st.Lag != 0 || st.Garbage != 0 || st.Refolds != 0 {
		t.Errorf("stats %+v", st)
	}
	seen := rec.seen()
	if !increasing(seen) || seen[len(seen)-1] != h.local.LastSeq {
		t.Errorf("OnRecord saw %v", seen)
	}
	// Every log record, and nothing else, reached the hook.
	if len(seen) != h.records {
		t.Errorf("OnRecord saw %d records, %d were appended to the log", len(seen), h.records)
	}
	select {
	case <-notify:
	case <-time.After(10 * time.Second):
		t.Error("no change notification")
	}
	if s, ok := p.State().Leader(); !ok || s.ID != "worker-0" {
		t.Errorf("leader %v", s)
	}
	if got := len(p.State().Owned("worker-2", 1)); got == 0 {
		t.Error("worker-2 owns nothing after the rebalance")
	}
}

// The projection hands out copies: mutating one changes nothing.
func TestStateIsACopy(t *testing.T) {
	ts := runServer(t)
	_, js := ts.connect(t)
	app, _ := newGroup(t, js, "g")
	h := newHarness(t, app)
	h.append(claim("", "a"))
	p := startProjection(t, h, Config{})
	caughtUp(t, p, h)
	s := p.State()
	s.Members["worker-0"].Nonce = "changed"
	s.Order = nil
	sameState(t, "after mutating a copy", h.local, p.State())
}

func TestGarbageIsSkipped(t *testing.T) {
	ts := runServer(t)
	_, js := ts.connect(t)
	app, _ := newGroup(t, js, "g")
	h := newHarness(t, app)
	logs := &logRecords{}
	p := startProjection(t, h, Config{Logger: slog.New(logs)})

	h.append(claim("", "a"))
	h.append(claim("", "b"))
	caughtUp(t, p, h)
	before := p.State()

	g1 := h.raw([]byte("not an envelope"))
	g2 := h.raw([]byte(`{"v":1,"t":999,"e":{}}`)) // unknown type
	caughtUp(t, p, h)
	// Apart from the sequence and the counters, garbage changes nothing.
	if diff := cmp.Diff(before, p.State(), stateOpts, cmpopts.IgnoreFields(decider.State{}, "LastSeq", "Counters")); diff != "" {
		t.Errorf("garbage changed the state:\n%s", diff)
	}
	h.append(claim("", "c"))
	caughtUp(t, p, h)
	sameState(t, "after garbage", h.local, p.State())

	st := p.Stats()
	if st.Garbage != 2 || st.Skipped != 2 {
		t.Errorf("garbage %d skipped %d, want 2 and 2", st.Garbage, st.Skipped)
	}
	if got := logs.warnedSeqs(); !slices.Equal(got, []uint64{g1, g2}) {
		t.Errorf("warnings for sequences %v, want %v", got, []uint64{g1, g2})
	}
}

func TestWaitForAndStop(t *testing.T) {
	ts := runServer(t)
	_, js := ts.connect(t)
	app, _ := newGroup(t, js, "g")
	h := newHarness(t, app)
	h.append(claim("", "a"))
	p := startProjection(t, h, Config{})
	caughtUp(t, p, h)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.WaitFor(ctx, 100); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitFor past the log: %v", err)
	}
	p.Stop()
	p.Stop()
	<-p.Done()
	if err := p.WaitFor(context.Background(), 100); !errors.Is(err, ErrStopped) {
		t.Errorf("WaitFor after Stop: %v", err)
	}
	if err := p.WaitFor(context.Background(), 1); err != nil {
		t.Errorf("WaitFor a folded sequence after Stop: %v", err)
	}
	if p.Err() != nil {
		t.Errorf("Err after Stop: %v", p.Err())
	}
	sameState(t, "after Stop", h.local, p.State())

	// Cancelling Start's context stops the projection too.
	sctx, scancel := context.WithCancel(context.Background())
	p2, err := Start(sctx, js, Config{Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	scancel()
	select {
	case <-p2.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("projection still running after its context ended")
	}
}

func TestConnectionClosed(t *testing.T) {
	ts := runServer(t)
	_, js := ts.connect(t)
	app, _ := newGroup(t, js, "g")
	h := newHarness(t, app)
	nc2, js2 := ts.connect(t)
	p, err := Start(h.ctx, js2, Config{Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	nc2.Close()
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("projection still running on a closed connection")
	}
	if !errors.Is(p.Err(), nats.ErrConnectionClosed) {
		t.Errorf("Err = %v", p.Err())
	}
	if err := p.WaitFor(context.Background(), 5); !errors.Is(err, ErrStopped) || !errors.Is(err, nats.ErrConnectionClosed) {
		t.Errorf("WaitFor = %v", err)
	}
}

func TestStartErrors(t *testing.T) {
	ts := runServer(t)
	_, js := ts.connect(t)
	if _, err := Start(testCtx(t), js, Config{Group: "missing"}); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("missing stream: %v", err)
	}
	if _, err := Start(testCtx(t), js, Config{Group: "a.b"}); !errors.Is(err, events.ErrInvalidID) {
		t.Errorf("invalid group: %v", err)
	}
}

// A server restart (same store) ends the session; the projection resumes
// after the last folded record: every record is folded exactly once.
func TestResumeAfterServerRestart(t *testing.T) {
	ts := runServer(t)
	nc, js := ts.connect(t)
	app, _ := newGroup(t, js, "g")
	h := newHarness(t, app)
	var rec recorder
	p := startProjection(t, h, Config{OnRecord: rec.hook})

	h.append(claim("", "a"))
	h.append(claim("", "b"))
	h.declare(30, 10)
	caughtUp(t, p, h)

	waitReconnected := reconnectWatch(t, nc)
	ts.restart(t, ts.dir)
	waitReconnected()
	eventually(t, 20*time.Second, "the projection to notice the restart", func() bool { return p.Stats().Reconnects >= 1 })

	h.closeWindow()
	h.decide(3)
	h.heartbeat("worker-0")
	h.append(claim("", "c"))
	caughtUp(t, p, h)
	sameState(t, "after the restart", h.local, p.State())

	seen := rec.seen()
	if !increasing(seen) {
		t.Errorf("records folded twice or out of order: %v", seen)
	}
	if st := p.Stats(); st.Refolds != 0 || st.LastApplied != h.local.LastSeq {
		t.Errorf("stats %+v", st)
	}
}

// A consumer deleted under the projection is recreated from LastApplied+1.
func TestResumeAfterConsumerDeleted(t *testing.T) {
	ts := runServer(t)
	_, js := ts.connect(t)
	app, st := newGroup(t, js, "g")
	h := newHarness(t, app)
	var rec recorder
	p := startProjection(t, h, Config{OnRecord: rec.hook})
	h.append(claim("", "a"))
	caughtUp(t, p, h)

	names := st.ConsumerNames(h.ctx)
	var deleted int
	for name := range names.Name() {
		if err := st.DeleteConsumer(h.ctx, name); err != nil {
			t.Fatal(err)
		}
		deleted++
	}
	if names.Err() != nil || deleted == 0 {
		t.Fatalf("deleted %d consumers: %v", deleted, names.Err())
	}
	h.append(claim("", "b"))
	h.append(claim("", "c"))
	caughtUp(t, p, h)
	sameState(t, "after the consumer was deleted", h.local, p.State())
	if seen := rec.seen(); !increasing(seen) || len(seen) != 3 {
		t.Errorf("folded %v", seen)
	}
}

func TestSnapshot(t *testing.T) {
	ts := runServer(t)
	_, js := ts.connect(t)
	app, _ := newGroup(t, js, "g")
	h := newHarness(t, app)
	p1 := startProjection(t, h, Config{})
	h.scenario()
	caughtUp(t, p1, h)

	// Many small chunks: one atomic batch.
	if err := WriteSnapshot(h.ctx, app, p1.State(), time.Hour, 256); err != nil {
		t.Fatal(err)
	}
	var rec recorder
	p2 := startProjection(t, h, Config{OnRecord: rec.hook})
	snapUpTo := h.local.LastSeq
	if p2.LastApplied() != snapUpTo {
		t.Fatalf("started at %d, want the snapshot's %d", p2.LastApplied(), h.local.LastSeq)
	}
	sameState(t, "from the snapshot", h.local, p2.State())
	sameState(t, "from the snapshot vs live", p1.State(), p2.State())

	h.append(claim("", "late"))
	h.heartbeat("worker-1")
	h.closeWindow()
	h.decide(100)
	h.releaseAll()
	caughtUp(t, p1, h)
	caughtUp(t, p2, h)
	sameState(t, "live after the snapshot", h.local, p1.State())
	sameState(t, "from the snapshot, then live", h.local, p2.State())
	if seen := rec.seen(); len(seen) == 0 || !increasing(seen) || seen[0] <= snapUpTo {
		t.Errorf("folded %v on top of the snapshot up to %d", seen, snapUpTo)
	}

	// One chunk: a single message.
	if err := WriteSnapshot(h.ctx, app, p1.State(), 0, 0); err != nil {
		t.Fatal(err)
	}
	var rec3 recorder
	p3 := startProjection(t, h, Config{OnRecord: rec3.hook})
	sameState(t, "from the one-chunk snapshot", h.local, p3.State())
	if len(rec3.seen()) != 0 {
		t.Errorf("folded %v on top of an up-to-date snapshot", rec3.seen())
	}

	// SkipSnapshot folds everything.
	var rec4 recorder
	p4 := startProjection(t, h, Config{SkipSnapshot: true, OnRecord: rec4.hook})
	caughtUp(t, p4, h)
	sameState(t, "skipping the snapshot", h.local, p4.State())
	if rec4.seen()[0] != 1 {
		t.Errorf("SkipSnapshot started at %d", rec4.seen()[0])
	}
}

// A snapshot that does not verify is ignored: the fold starts from 1.
func TestSnapshotCorrupt(t *testing.T) {
	ts := runServer(t)
	_, js := ts.connect(t)
	app, _ := newGroup(t, js, "g")
	h := newHarness(t, app)
	h.scenario()
	data, _, err := decider.Snapshot(h.local)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*events.SnapshotChunk{
		{UpTo: h.local.LastSeq, Hash: "0123", Part: 0, Parts: 1, Data: data},                   // wrong hash
		{UpTo: h.local.LastSeq, Hash: decider.Hash(data), Part: 1, Parts: 2, Data: data[:10]},  // first part missing
		{UpTo: h.local.LastSeq + 100, Hash: decider.Hash(data), Part: 0, Parts: 1, Data: data}, // not the state's sequence
	} {
		if _, err := app.publish(h.ctx, app.Subjects().Snapshot(), c, "snapshot"); err != nil {
			t.Fatal(err)
		}
		var rec recorder
		logs := &logRecords{}
		p := startProjection(t, h, Config{OnRecord: rec.hook, Logger: slog.New(logs)})
		caughtUp(t, p, h)
		sameState(t, "after a corrupt snapshot", h.local, p.State())
		if seen := rec.seen(); seen[0] != 1 {
			t.Errorf("chunk %+v: folding started at %d", c, seen[0])
		}
		if p.Stats().Refolds != 0 {
			t.Errorf("a bad snapshot counted as a refold")
		}
	}
}

// A snapshot ahead of the log (the log lost records the snapshot covers) is
// detected when the projection connects: it refolds from 1.
func TestRefoldSnapshotAheadOfLog(t *testing.T) {
	ts := runServer(t)
	_, js := ts.connect(t)

	appA, _ := newGroup(t, js, "a")
	ha := newHarness(t, appA)
	for _, n := range []string{"a0", "a1", "a2", "a3", "a4"} {
		ha.append(claim("", n))
	}
	appB, _ := newGroup(t, js, "b")
	hb := newHarness(t, appB)
	hb.append(claim("", "b0"))
	hb.append(claim("", "b1"))
	for range 4 {
		hb.heartbeat("worker-0")
	}
	// The snapshot says the log reached 5; the log subject ends at 2.
	if err := WriteSnapshot(hb.ctx, appB, ha.local, 0, 0); err != nil {
		t.Fatal(err)
	}
	logs := &logRecords{}
	p := startProjection(t, hb, Config{Logger: slog.New(logs)})
	caughtUp(t, p, hb)
	sameState(t, "after the refold", hb.local, p.State())
	if st := p.Stats(); st.Refolds != 1 || st.LastApplied != 2 {
		t.Errorf("stats %+v", st)
	}
}

// The server loses its store while the projection runs; the stream that
// comes back holds a different, longer log. On reconnect the record at
// LastApplied is not the one folded: the projection refolds.
func TestRefoldAfterStoreLoss(t *testing.T) {
	ts := runServer(t)
	nc, js := ts.connect(t)
	app, _ := newGroup(t, js, "g")
	h := newHarness(t, app)
	// What readers see while the refold folds: the state from before it.
	var (
		mu   sync.Mutex
		seen []string
	)
	cfg := Config{Logger: slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		refoldRecord: func(p *Projection) {
			st := p.Stats()
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, fmt.Sprintf("%d/%d/%d/%v", p.LastApplied(), p.State().LastSeq, len(p.State().LiveMembers()), st.Refolding))
		}}
	p := startProjection(t, h, cfg)
	h.append(claim("", "a"))
	h.append(claim("", "b"))
	h.append(claim("", "c"))
	caughtUp(t, p, h)
	before := fmt.Sprintf("3/3/%d/true", len(h.local.LiveMembers()))

	// The host "crashes": the new store is built on a server the
	// projection's client cannot reach, then served on the old port.
	waitReconnected := reconnectWatch(t, nc)
	ts.srv.Shutdown()
	ts.srv.WaitForShutdown()
	fresh := t.TempDir()
	other, err := startNATS(-1, fresh)
	if err != nil {
		t.Fatal(err)
	}
	nc2, err := nats.Connect(other.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js2, _ := jetstream.New(nc2)
	app2, _ := newGroup(t, js2, "g")
	h2 := newHarness(t, app2)
	for _, n := range []string{"x", "y", "z", "w", "v"} {
		h2.append(claim("", n))
	}
	nc2.Close()
	other.Shutdown()
	other.WaitForShutdown()
	ts.restart(t, fresh)

	waitReconnected()
	eventually(t, 20*time.Second, "the refold", func() bool { return p.Stats().Refolds == 1 })
	caughtUp(t, p, h2)
	sameState(t, "after the refold", h2.local, p.State())
	if st := p.Stats(); st.Refolds != 1 || st.Reconnects < 1 || st.Refolding {
		t.Errorf("stats %+v", st)
	}
	// Every record the refold folded (five) left readers on the old state.
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 5 {
		t.Errorf("the refold folded %d records, want 5", len(seen))
	}
	for i, got := range seen {
		if got != before {
			t.Errorf("after the refold's record %d readers saw applied/last/members/refolding %s, want the old state %s", i+1, got, before)
		}
	}
}

// TestCheckTailRebuildsAStuckTail: a tail whose consumer stops delivering
// on a healthy connection (paused on the server) is noticed by the second
// CheckTail that finds the fold where the first left it, and replaced.
func TestCheckTailRebuildsAStuckTail(t *testing.T) {
	ts := runServer(t)
	_, js := ts.connect(t)
	app, st := newGroup(t, js, "g")
	h := newHarness(t, app)
	p := startProjection(t, h, Config{})
	h.append(claim("", "a"))
	caughtUp(t, p, h)
	for range 2 {
		newest, stalled, err := p.CheckTail(h.ctx)
		if err != nil || newest != h.local.LastSeq || stalled {
			t.Fatalf("CheckTail = %d, %v, %v; want %d, false", newest, stalled, err, h.local.LastSeq)
		}
	}
	if n := p.Stats().Stalls; n != 0 {
		t.Fatalf("a caught-up tail counted %d stalls", n)
	}

	paused := 0
	lister := st.ListConsumers(h.ctx)
	for info := range lister.Info() {
		if info.Config.FilterSubject == app.Subjects().Log() || slices.Contains(info.Config.FilterSubjects, app.Subjects().Log()) {
			if _, err := st.PauseConsumer(h.ctx, info.Name, time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			paused++
		}
	}
	if paused != 1 {
		t.Fatalf("paused %d consumers, want the tail's", paused)
	}
	h.append(claim("", "b"))
	if _, stalled, err := p.CheckTail(h.ctx); err != nil || stalled {
		t.Fatal(stalled, err)
	}
	if n := p.Stats().Stalls; n != 0 {
		t.Fatalf("one check counted %d stalls: it has nothing to compare with", n)
	}
	if _, stalled, err := p.CheckTail(h.ctx); err != nil || !stalled {
		t.Fatal(stalled, err)
	}
	if n := p.Stats().Stalls; n != 1 {
		t.Fatalf("Stalls = %d after two checks found the fold stuck behind the log, want 1", n)
	}
	caughtUp(t, p, h)
	sameState(t, "after the new tail", h.local, p.State())
}

func TestWatchSubject(t *testing.T) {
	ts := runServer(t)
	_, js := ts.connect(t)
	app, _ := newGroup(t, js, "g")
	h := newHarness(t, app)
	subj := app.Subjects().Heartbeat("worker-0", 1)
	h.heartbeat("worker-0")
	h.heartbeat("worker-0")
	h.append(claim("", "a"))
	h.heartbeat("worker-1")

	got := make(chan events.Record, 16)
	stop, err := WatchSubject(h.ctx, js, app.StreamName(), subj, func(r events.Record) { got <- r })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	next := func() events.Record {
		t.Helper()
		select {
		case r := <-got:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("no record")
			return events.Record{}
		}
	}
	if r := next(); r.Seq != h.hbSeq[subj] || r.Subject != subj {
		t.Fatalf("first record %d on %s, want the last heartbeat %d", r.Seq, r.Subject, h.hbSeq[subj])
	}
	h.heartbeat("worker-1")
	h.heartbeat("worker-0")
	if r := next(); r.Seq != h.hbSeq[subj] {
		t.Fatalf("record %d, want %d", r.Seq, h.hbSeq[subj])
	}
	v := &events.ExpiryVerdict{Member: "worker-0", Incarnation: 1, Judge: "worker-1", JudgeInc: 1, LastSeen: h.hbSeq[subj]}
	vs, err := app.PublishVerdict(h.ctx, subj, v, h.hbSeq[subj])
	if err != nil {
		t.Fatal(err)
	}
	if r := next(); r.Seq != vs {
		t.Fatalf("record %d, want the verdict %d", r.Seq, vs)
	} else if _, ok := r.Event.(*events.ExpiryVerdict); !ok {
		t.Fatalf("record %+v is not a verdict", r)
	}
	stop()
	stop()
	if _, err := WatchSubject(h.ctx, js, app.StreamName(), app.Subjects().Heartbeats(), func(events.Record) {}); err == nil {
		t.Error("wildcard accepted")
	}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }
