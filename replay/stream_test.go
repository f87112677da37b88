package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/projection"
	"github.com/parti-io/parti/replay/replaytest"
)

func TestStreamNameMatchesProjection(t *testing.T) {
	if StreamName("orders") != projection.StreamName("orders") {
		t.Fatalf("replay reads %s, projection writes %s", StreamName("orders"), projection.StreamName("orders"))
	}
}

// liveGroup is a group stream on an embedded server, with a Builder that
// appends to it through a projection.Appender.
type liveGroup struct {
	url string
	js  jetstream.JetStream
	b   *replaytest.Builder
	app *projection.Appender
}

func startLive(t *testing.T, storeDir string) *liveGroup {
	t.Helper()
	if storeDir == "" {
		storeDir = t.TempDir()
	}
	srv := natstest.Start(t, natstest.Options(storeDir))
	_, js := natstest.Connect(t, srv.ClientURL())
	ctx := t.Context()
	if _, err := projection.Provision(ctx, js, projection.StreamConfig{Group: "orders"}); err != nil {
		t.Fatal(err)
	}
	subj, _ := events.NewSubjects("orders")
	app := projection.NewAppender(js, subj)
	b, err := replaytest.NewBuilder("orders", &replaytest.AppenderEmitter{Ctx: ctx, App: app, JS: js})
	if err != nil {
		t.Fatal(err)
	}
	return &liveGroup{url: srv.ClientURL(), js: js, b: b, app: app}
}

func streamSource(t *testing.T, g *liveGroup) *StreamSource {
	t.Helper()
	src, err := NewStreamSource(t.Context(), g.js, "orders")
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// TestStateMatchesLiveProjection is the differential test: at every log
// sequence N, the state replay computes from the stream equals the state a
// live projection had right after folding N.
func TestStateMatchesLiveProjection(t *testing.T) {
	g := startLive(t, "")
	ctx := t.Context()
	var (
		mu     sync.Mutex
		states = map[uint64]string{}
		p      *projection.Projection
		ready  = make(chan struct{})
	)
	p, err := projection.Start(ctx, g.js, projection.Config{Group: "orders", SkipSnapshot: true,
		OnRecord: func(r events.Record, _ decider.Outcome) {
			<-ready
			s := stateJSON(t, p.State())
			mu.Lock()
			states[r.Seq] = s
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	close(ready)
	defer p.Stop()
	replaytest.Scenario(g.b)
	if err := g.b.Err(); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitFor(ctx, g.b.State.LastSeq); err != nil {
		t.Fatal(err)
	}
	src := streamSource(t, g)
	mu.Lock()
	defer mu.Unlock()
	if len(states) < 20 {
		t.Fatalf("the projection folded only %d records", len(states))
	}
	for seq, want := range states {
		got, err := StateAt(ctx, src, AtSeq(seq))
		if err != nil {
			t.Fatal(err)
		}
		if g := stateJSON(t, got.State); g != want {
			t.Fatalf("state at %d: replay differs from the live projection:\n%s", seq, cmp.Diff(want, g))
		}
	}
	end, err := StateAt(ctx, src, Point{})
	if err != nil {
		t.Fatal(err)
	}
	if stateJSON(t, end.State) != stateJSON(t, g.b.State) {
		t.Fatal("the state at the end differs from the builder's")
	}
}

// exportSource exports everything src holds.
func exportSource(t *testing.T, src Source) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := src.Scan(t.Context(), ScanOptions{}, w.Write); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// jsonOf marshals v with its source blanked.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	delete(m, "source")
	b, _ = json.MarshalIndent(m, "", " ")
	return string(b)
}

// TestFileReplaysLikeStream exports a live stream and checks that the file
// gives exactly what the stream gives: state, audit, every partition's
// history, every tail line; and that re-exporting the file gives the same
// bytes.
func TestFileReplaysLikeStream(t *testing.T) {
	g := startLive(t, "")
	replaytest.Scenario(g.b)
	if err := g.b.Err(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	stream := streamSource(t, g)
	data := exportSource(t, stream)
	path := filepath.Join(t.TempDir(), "orders.jsonl")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	file, err := OpenFile(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if again := exportSource(t, file); !bytes.Equal(again, data) {
		t.Fatalf("file → export differs from stream → export:\n%s", cmp.Diff(string(data), string(again)))
	}
	if !strings.Contains(string(data), `"headers":{"Nats-Expected-Last-Subject-Sequence"`) {
		t.Errorf("the export kept no fence headers:\n%s", data)
	}
	for _, src := range []Source{stream, file} {
		if n := strings.Count(string(data), "\n"); n != len(scenario(t)) {
			t.Fatalf("%s: %d records exported, the scenario has %d", src, n, len(scenario(t)))
		}
	}
	same := func(what string, a, b any) {
		t.Helper()
		if x, y := jsonOf(t, a), jsonOf(t, b); x != y {
			t.Errorf("%s: stream and file differ:\n%s", what, cmp.Diff(x, y))
		}
	}
	s1, err1 := StateAt(ctx, stream, Point{})
	s2, err2 := StateAt(ctx, file, Point{})
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	same("state", s1, s2)
	a1, err1 := Audit(ctx, stream, AuditOptions{MaxUnowned: 30 * time.Second})
	a2, err2 := Audit(ctx, file, AuditOptions{MaxUnowned: 30 * time.Second})
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if !onlyScenarioJunk(a1) {
		t.Errorf("the live scenario has other violations than its two junk records: %+v", a1.Violations)
	}
	same("audit", a1, a2)
	for _, id := range s1.State.Partitions {
		e1, err1 := Explain(ctx, stream, id)
		e2, err2 := Explain(ctx, file, id)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		same("explain "+id, e1, e2)
	}
	tail := func(src Source) string {
		var b strings.Builder
		if err := Tail(ctx, src, TailOptions{From: 1}, func(e *TailEvent) error { b.WriteString(e.Text() + "\n"); return nil }); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	if x, y := tail(stream), tail(file); x != y {
		t.Errorf("tail: stream and file differ:\n%s", cmp.Diff(x, y))
	}
}

func TestStreamFollow(t *testing.T) {
	g := startLive(t, "")
	g.b.Claim("worker-0")
	src := streamSource(t, g)
	ctx, cancel := context.WithCancel(t.Context())
	seen := make(chan uint64, 16)
	done := make(chan error, 1)
	go func() {
		done <- src.Scan(ctx, ScanOptions{Follow: true}, func(r *events.Record) error {
			seen <- r.Seq
			return nil
		})
	}()
	next := func() uint64 {
		select {
		case s := <-seen:
			return s
		case <-time.After(10 * time.Second):
			t.Fatal("no record within 10 s")
		}
		return 0
	}
	if s := next(); s != 1 {
		t.Fatalf("first record %d", s)
	}
	g.b.Claim("worker-1")
	g.b.Heartbeat("worker-1")
	if a, b := next(), next(); a != 2 || b != 3 {
		t.Fatalf("followed %d, %d", a, b)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Scan ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Scan did not end after cancel")
	}
}

func TestStreamErrors(t *testing.T) {
	g := startLive(t, "")
	ctx := t.Context()
	if _, err := NewStreamSource(ctx, g.js, "nope"); !errors.Is(err, ErrNoStream) {
		t.Fatalf("missing stream: %v", err)
	}
	if _, err := Connect(ctx, ConnectOptions{Server: "http://localhost:4222"}); err == nil || !strings.Contains(err.Error(), "bad server URL") {
		t.Fatalf("bad URL: %v", err)
	}
	start := time.Now()
	if _, err := Connect(ctx, ConnectOptions{Server: "nats://127.0.0.1:1", Timeout: time.Second}); err == nil || !strings.Contains(err.Error(), "connect to nats://127.0.0.1:1") {
		t.Fatalf("refused: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a refused connection took %v", d)
	}
	c, err := Connect(ctx, ConnectOptions{Server: g.url})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	src, err := c.Source(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	// An empty stream is an empty history.
	st, err := StateAt(ctx, src, Point{})
	if err != nil || st.At.Seq != 0 || len(st.State.Members) != 0 {
		t.Fatalf("empty stream: %+v %v", st, err)
	}
}

func TestConnectWithContext(t *testing.T) {
	g := startLive(t, "")
	cfg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfg)
	dir := filepath.Join(cfg, "nats", "context")
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "test.json"), []byte(`{"description":"x","url":"`+g.url+`","user":"u","jetstream_domain":"hub"}`), 0o600)
	c, err := Connect(t.Context(), ConnectOptions{Context: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.Warnings) != 2 || !strings.Contains(c.Warnings[0], `"user"`) || !strings.Contains(c.Warnings[1], `"jetstream_domain"`) {
		t.Fatalf("warnings %q", c.Warnings)
	}
	if _, err := Connect(t.Context(), ConnectOptions{Context: "missing"}); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing context: %v", err)
	}
	if _, err := Connect(t.Context(), ConnectOptions{Context: "../etc/passwd"}); err == nil {
		t.Fatal("a context path was accepted")
	}
}
