package projection

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti/events"
)

func newGroup(t *testing.T, js jetstream.JetStream, group string) (*Appender, jetstream.Stream) {
	t.Helper()
	st, err := Provision(testCtx(t), js, StreamConfig{Group: group})
	if err != nil {
		t.Fatal(err)
	}
	subjects, err := events.NewSubjects(group)
	if err != nil {
		t.Fatal(err)
	}
	return NewAppender(js, subjects), st
}

func TestProvision(t *testing.T) {
	ts := runServer(t)
	_, js := ts.connect(t)
	ctx := testCtx(t)

	st, err := Provision(ctx, js, StreamConfig{Group: "g1"})
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := info.Config
	if c.Name != "PARTI_g1" || !cmp.Equal(c.Subjects, []string{"parti.g1.>"}) {
		t.Errorf("name %s subjects %v", c.Name, c.Subjects)
	}
	if !c.DenyDelete || !c.DenyPurge || c.AllowRollup || !c.AllowMsgTTL || !c.AllowAtomicPublish || c.SubjectDeleteMarkerTTL != 0 {
		t.Errorf("settings not kept: %+v", c)
	}
	if c.Discard != jetstream.DiscardOld || c.MaxMsgs > 0 || c.MaxBytes > 0 || c.MaxAge != 0 || c.MaxMsgsPerSubject > 0 {
		t.Errorf("limits: %+v", c)
	}
	if c.Storage != jetstream.FileStorage || c.Replicas != 1 {
		t.Errorf("storage %v replicas %d", c.Storage, c.Replicas)
	}

	// A second Provision is a no-op.
	st2, err := Provision(ctx, js, StreamConfig{Group: "g1", Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	info2, err := st2.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !info2.Created.Equal(info.Created) || !cmp.Equal(info2.Config, info.Config) {
		t.Errorf("second Provision changed the stream:\n%s", cmp.Diff(info.Config, info2.Config))
	}

	// The server refuses to purge or delete.
	if err := st.Purge(ctx); err == nil {
		t.Error("purge succeeded on the group stream")
	}

	if _, err := Provision(ctx, js, StreamConfig{Group: "bad.group"}); err == nil {
		t.Error("invalid group accepted")
	}
}

func TestProvisionIncompatible(t *testing.T) {
	ts := runServer(t)
	_, js := ts.connect(t)
	ctx := testCtx(t)

	// Created by hand, without DenyPurge.
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:               StreamName("g2"),
		Subjects:           []string{"parti.g2.>"},
		DenyDelete:         true,
		AllowMsgTTL:        true,
		AllowAtomicPublish: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Provision(ctx, js, StreamConfig{Group: "g2"})
	if !errors.Is(err, ErrIncompatibleStream) {
		t.Fatalf("got %v, want ErrIncompatibleStream", err)
	}
	st, err := js.Stream(ctx, StreamName("g2"))
	if err != nil {
		t.Fatal(err)
	}
	if st.CachedInfo().Config.DenyPurge {
		t.Error("Provision updated an existing stream")
	}

	// Replicas named explicitly must match.
	if _, err := Provision(ctx, js, StreamConfig{Group: "g3"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Provision(ctx, js, StreamConfig{Group: "g3", Storage: jetstream.MemoryStorage}); !errors.Is(err, ErrIncompatibleStream) {
		t.Errorf("storage mismatch: got %v", err)
	}
}

// claim is a member's claim of id ("" for a worker slot).
func claim(id, nonce string) *events.MemberClaimed {
	return &events.MemberClaimed{ID: id, Nonce: nonce, MaxProtocol: events.MaxVersion}
}

func apiCode(err error) jetstream.ErrorCode {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode
	}
	return 0
}

func TestAppendFenced(t *testing.T) {
	ts := runServer(t)
	_, js := ts.connect(t)
	ctx := testCtx(t)
	app, _ := newGroup(t, js, "g")

	s1, err := app.AppendFenced(ctx, claim("", "n1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := app.Append(ctx, claim("", "n2"))
	if err != nil {
		t.Fatal(err)
	}
	s3, err := app.AppendFenced(ctx, claim("", "n3"), s2)
	if err != nil {
		t.Fatal(err)
	}
	if s1 != 1 || s2 != 2 || s3 != 3 {
		t.Errorf("sequences %d %d %d", s1, s2, s3)
	}
	_, err = app.AppendFenced(ctx, claim("", "n4"), s2)
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("stale fence: got %v, want ErrConflict", err)
	}
	if c := apiCode(err); c != 10071 && c != 10164 {
		t.Errorf("error code %d", c)
	}
	rec, found, err := app.LastOnSubject(ctx, app.Subjects().Log())
	if err != nil || !found || rec.Seq != s3 {
		t.Fatalf("last on log: %+v %v %v", rec, found, err)
	}
	if c, ok := rec.Event.(*events.MemberClaimed); !ok || c.Nonce != "n3" || rec.Version != events.MaxVersion {
		t.Errorf("last record %+v", rec)
	}
}

func TestHeartbeatAndVerdict(t *testing.T) {
	ts := runServer(t)
	_, js := ts.connect(t)
	ctx := testCtx(t)
	app, _ := newGroup(t, js, "g")
	hb := app.Subjects().Heartbeat("worker-0", 1)

	if _, found, err := app.LastOnSubject(ctx, hb); found || err != nil {
		t.Fatalf("empty subject: found=%v err=%v", found, err)
	}
	h1, err := app.Heartbeat(ctx, hb, &events.Heartbeat{Nonce: "n"}, 0, 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	rec, found, err := app.LastOnSubject(ctx, hb)
	if err != nil || !found || rec.Seq != h1 {
		t.Fatalf("last heartbeat: %+v %v %v", rec, found, err)
	}
	if got := rec.Header[jetstream.MsgTTLHeader]; !cmp.Equal(got, []string{"2s"}) {
		t.Errorf("TTL header %v, want 2s (rounded up to whole seconds)", got)
	}
	if _, err := app.Heartbeat(ctx, hb, &events.Heartbeat{Nonce: "n"}, 0, time.Minute); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale heartbeat: got %v, want ErrConflict", err)
	}
	h2, err := app.Heartbeat(ctx, hb, &events.Heartbeat{Nonce: "n"}, h1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// The judge saw h2: its verdict lands, and the victim's next heartbeat
	// (fenced on h2) is refused.
	v := &events.ExpiryVerdict{Member: "worker-0", Incarnation: 1, Judge: "worker-1", JudgeInc: 1, LastSeen: h2, SpanMillis: 6000}
	vs, err := app.PublishVerdict(ctx, hb, v, h2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.Heartbeat(ctx, hb, &events.Heartbeat{Nonce: "n"}, h2, time.Minute); !errors.Is(err, ErrConflict) {
		t.Fatalf("heartbeat after verdict: got %v, want ErrConflict", err)
	}
	rec, _, err = app.LastOnSubject(ctx, hb)
	if err != nil || rec.Seq != vs {
		t.Fatal(rec, err)
	}
	if diff := cmp.Diff(events.Event(v), rec.Event); diff != "" {
		t.Errorf("verdict read back: %s", diff)
	}
	if _, ok := rec.Header[jetstream.MsgTTLHeader]; ok {
		t.Error("verdict has a TTL")
	}
	if _, err := app.PublishVerdict(ctx, hb, v, h1); !errors.Is(err, ErrConflict) {
		t.Errorf("second verdict: got %v, want ErrConflict", err)
	}
	if _, err := app.Heartbeat(ctx, app.Subjects().Log(), &events.Heartbeat{Nonce: "n"}, 0, time.Minute); err == nil {
		t.Error("heartbeat on the log subject accepted")
	}
}

// A heartbeat subject whose messages all expired compares against 0.
func TestHeartbeatExpires(t *testing.T) {
	ts := runServer(t)
	_, js := ts.connect(t)
	ctx := testCtx(t)
	app, _ := newGroup(t, js, "g")
	hb := app.Subjects().Heartbeat("worker-3", 7)
	if _, err := app.Heartbeat(ctx, hb, &events.Heartbeat{Nonce: "n"}, 0, time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the heartbeat to expire", func() bool {
		_, found, err := app.LastOnSubject(ctx, hb)
		return err == nil && !found
	})
	if _, err := app.Heartbeat(ctx, hb, &events.Heartbeat{Nonce: "n"}, 0, time.Second); err != nil {
		t.Fatalf("heartbeat fenced on 0 after expiry: %v", err)
	}
}

func TestAppendBatch(t *testing.T) {
	ts := runServer(t)
	_, js := ts.connect(t)
	ctx := testCtx(t)
	app, st := newGroup(t, js, "g")

	s1, err := app.Append(ctx, claim("", "a"))
	if err != nil {
		t.Fatal(err)
	}
	// A heartbeat in between: the fence is on the log subject only.
	if _, err := app.Heartbeat(ctx, app.Subjects().Heartbeat("worker-0", 1), &events.Heartbeat{Nonce: "a"}, 0, time.Minute); err != nil {
		t.Fatal(err)
	}
	batch := []events.Event{claim("", "b"), claim("", "c"), claim("", "d")}
	last, err := app.AppendBatch(ctx, batch, s1)
	if err != nil {
		t.Fatal(err)
	}
	if last != 5 {
		t.Errorf("last sequence %d, want 5", last)
	}
	for i, want := range batch {
		m, err := st.GetMsg(ctx, last-2+uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		rec := rawRecord(m)
		if rec.Subject != app.Subjects().Log() {
			t.Errorf("message %d on %s", i, rec.Subject)
		}
		if diff := cmp.Diff(want, rec.Event); diff != "" {
			t.Errorf("message %d: %s", i, diff)
		}
	}

	// A batch whose first fence is stale lands nothing.
	_, err = app.AppendBatch(ctx, []events.Event{claim("", "x"), claim("", "y")}, s1)
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("stale batch: got %v, want ErrConflict", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.LastSeq != last || info.State.Msgs != 5 {
		t.Errorf("after a refused batch: last %d msgs %d", info.State.LastSeq, info.State.Msgs)
	}

	// The largest batch lands whole; one more is refused before sending.
	big := make([]events.Event, MaxBatch)
	for i := range big {
		big[i] = &events.WindowClosed{By: "worker-0"}
	}
	last2, err := app.AppendBatch(ctx, big, last)
	if err != nil {
		t.Fatal(err)
	}
	if last2 != last+MaxBatch {
		t.Errorf("big batch ends at %d, want %d", last2, last+MaxBatch)
	}
	if _, err := app.AppendBatch(ctx, append(big, big[0]), last2); err == nil || errors.Is(err, ErrConflict) {
		t.Errorf("oversized batch: %v", err)
	}
	if _, err := app.AppendBatch(ctx, nil, last2); err == nil {
		t.Error("empty batch accepted")
	}
	// A single event is a fenced append.
	if s, err := app.AppendBatch(ctx, big[:1], last2); err != nil || s != last2+1 {
		t.Errorf("single-event batch: %d %v", s, err)
	}
	if _, err := app.AppendBatch(ctx, big[:1], last2); !errors.Is(err, ErrConflict) {
		t.Errorf("stale single-event batch: %v", err)
	}
}

func TestAppendBatchNoStream(t *testing.T) {
	ts := runServer(t)
	_, js := ts.connect(t)
	subjects, _ := events.NewSubjects("nostream")
	app := NewAppender(js, subjects)
	_, err := app.AppendBatch(testCtx(t), []events.Event{claim("", "a"), claim("", "b")}, 0)
	if !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Errorf("got %v, want ErrNoStreamResponse", err)
	}
}

func TestAppenderVersion(t *testing.T) {
	subjects, _ := events.NewSubjects("g")
	app := NewAppender(nil, subjects)
	if app.Version() != events.MaxVersion {
		t.Errorf("default version %d", app.Version())
	}
	app.SetVersion(1)
	defer func() {
		if recover() == nil {
			t.Error("SetVersion(0) did not panic")
		}
	}()
	app.SetVersion(0)
}
