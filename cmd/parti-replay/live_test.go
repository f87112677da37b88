package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/projection"
	"github.com/parti-io/parti/replay/replaytest"
)

// watchBuffer is a buffer that signals every write, so that a test can
// wait for output without sleeping.
type watchBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newWatchBuffer() *watchBuffer { return &watchBuffer{changed: make(chan struct{}, 1)} }

func (w *watchBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	select {
	case w.changed <- struct{}{}:
	default:
	}
	return n, err
}

func (w *watchBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor waits until cond holds for the output, or fails at the deadline.
func (w *watchBuffer) waitFor(t *testing.T, what string, deadline time.Duration, cond func(string) bool) string {
	t.Helper()
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	for {
		if s := w.String(); cond(s) {
			return s
		}
		select {
		case <-w.changed:
		case <-timer.C:
			t.Fatalf("no %s within %v; output so far:\n%s", what, deadline, w.String())
		}
	}
}

// liveServer starts a server with the orders group's stream and returns its
// URL and a Builder appending to it through a projection.Appender.
func liveServer(t *testing.T, dir string) (string, jetstream.JetStream, *replaytest.Builder) {
	t.Helper()
	srv := natstest.Start(t, natstest.Options(dir))
	_, js := natstest.Connect(t, srv.ClientURL())
	if _, err := projection.Provision(t.Context(), js, projection.StreamConfig{Group: "orders"}); err != nil {
		t.Fatal(err)
	}
	subj, _ := events.NewSubjects("orders")
	b, err := replaytest.NewBuilder("orders", &replaytest.AppenderEmitter{Ctx: t.Context(), App: projection.NewAppender(js, subj), JS: js})
	if err != nil {
		t.Fatal(err)
	}
	return srv.ClientURL(), js, b
}

// TestTailFollowsTheStream runs tail against a live server and checks it
// prints what is appended after it started, one line per record, heartbeats
// and verdicts included, and stops on cancel with exit status 0.
func TestTailFollowsTheStream(t *testing.T) {
	url, _, b := liveServer(t, t.TempDir())
	b.Claim("worker-0") // before tail starts: folded, not printed
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stdout, stderr := newWatchBuffer(), newWatchBuffer()
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"tail", "--server", url, "--group", "orders"}, stdout, stderr) }()
	stderr.waitFor(t, "ready line", 10*time.Second, func(s string) bool { return strings.Contains(s, "from seq 2") })

	b.Claim("worker-1")
	b.Heartbeats()
	b.Declare(replaytest.PartitionIDs(4), "sticky", 0)
	b.CloseWindow(100)
	b.Decide()
	b.Crash("worker-1", 6100)
	if b.Err() != nil {
		t.Fatal(b.Err())
	}
	want := []string{"member-claimed", "heartbeat", "heartbeat", "partitions-declared", "window-closed", "assignment-decided", "expiry-verdict", "member-removed"}
	out := stdout.waitFor(t, "tail output", 10*time.Second, func(s string) bool { return strings.Count(s, "\n") >= len(want) })
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, line := range lines {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != want[i] {
			t.Errorf("line %d: %q, want type %s", i, line, want[i])
		}
	}
	if !strings.Contains(lines[0], "granted=worker-1/1") || !strings.Contains(lines[6], "judge=worker-0/1") {
		t.Errorf("key fields missing:\n%s", out)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("tail exit %d, stderr %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tail did not stop on cancel")
	}
}

// TestStreamCommands runs the read commands against a live stream and a
// copy of its store, and checks they print what they print for its export.
func TestStreamCommands(t *testing.T) {
	dir := t.TempDir()
	url, _, b := liveServer(t, dir)
	replaytest.Scenario(b)
	if b.Err() != nil {
		t.Fatal(b.Err())
	}
	ctx := t.Context()
	out := filepath.Join(t.TempDir(), "orders.jsonl")
	if _, stderr, code := runCLI(ctx, "export", "--server", url, "--group", "orders", "--out", out); code != 0 {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	// The store of a running server can be copied torn; the test copies it
	// anyway, after the last write: only the embedded path is under test.
	for _, args := range [][]string{
		{"state"}, {"audit"}, {"explain", "p-00"}, {"diff", "20", "end"}, {"whatif", "--strategy", "round-robin"},
		{"state", "--json", "--seq", "33"}, {"audit", "--json"},
	} {
		// The scenario holds two records no correct member writes: the
		// audit exits 1 on them, from a file and from the stream alike.
		want := 0
		if args[0] == "audit" {
			want = 1
		}
		fromFile, stderr, code := runCLI(ctx, append(args, "--file", out)...)
		if code != want {
			t.Fatalf("%v --file: exit %d: %s", args, code, stderr)
		}
		for _, src := range [][]string{{"--server", url, "--group", "orders"}, {"--embedded", dir, "--group", "orders"}} {
			fromStream, stderr, code := runCLI(ctx, append(args, src...)...)
			if code != want {
				t.Fatalf("%v %v: exit %d: %s", args, src, code, stderr)
			}
			if a, b := dropSource(fromFile), dropSource(fromStream); a != b {
				t.Errorf("%v: %v prints differently from its export:\n--- file\n%s\n--- %v\n%s", args, src, a, src[0], b)
			}
		}
	}
}

// dropSource removes the lines that name the source, and what only a live
// stream has (state's heartbeats section).
func dropSource(s string) string {
	if i := strings.Index(s, "\nheartbeats ("); i >= 0 {
		s = s[:i+1]
	}
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(l, "source") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func TestStreamErrorsAreClear(t *testing.T) {
	url, _, _ := liveServer(t, t.TempDir())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"state", "--server", url, "--group", "payments"}, "stream PARTI_payments of group payments does not exist"},
		{[]string{"state", "--server", "nats://127.0.0.1:1", "--group", "orders", "--timeout", "1s"}, "connect to nats://127.0.0.1:1"},
		{[]string{"state", "--server", "nats://user:secret@127.0.0.1:1", "--group", "orders", "--timeout", "1s"}, "REDACTED"},
		{[]string{"state", "--context", "nope", "--group", "orders"}, "context nope"},
		{[]string{"state", "--server", url, "--group", "orders", "--creds", "/nonexistent.creds"}, "credentials file"},
		{[]string{"state", "--embedded", "/nonexistent", "--group", "orders"}, "embedded store"},
	} {
		stdout, stderr, code := runCLI(t.Context(), tc.args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "secret") || strings.Contains(stderr, "goroutine") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q (want %q)", tc.args, code, stdout, stderr, tc.want)
		}
	}
}

// TestContextFlag: --context connects as the nats CLI context says, every
// setting included: here a token, which a server that requires it checks
// (an earlier reader of context files ignored tokens).
func TestContextFlag(t *testing.T) {
	opts := natstest.Options(t.TempDir())
	opts.Authorization = "s3cret"
	srv := natstest.Start(t, opts)
	_, js := natstest.Connect(t, srv.ClientURL(), nats.Token("s3cret"))
	if _, err := projection.Provision(t.Context(), js, projection.StreamConfig{Group: "orders"}); err != nil {
		t.Fatal(err)
	}
	subj, _ := events.NewSubjects("orders")
	b, err := replaytest.NewBuilder("orders", &replaytest.AppenderEmitter{Ctx: t.Context(), App: projection.NewAppender(js, subj), JS: js})
	if err != nil {
		t.Fatal(err)
	}
	b.Claim("worker-0")
	cfg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfg)
	os.MkdirAll(filepath.Join(cfg, "nats", "context"), 0o700)
	os.WriteFile(filepath.Join(cfg, "nats", "context", "local.json"), []byte(`{"url":"`+srv.ClientURL()+`","token":"s3cret"}`), 0o600)
	stdout, stderr, code := runCLI(t.Context(), "state", "--context", "local", "--group", "orders")
	if code != 0 || !strings.Contains(stdout, "worker-0/1") {
		t.Fatalf("with the context: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	if _, _, code := runCLI(t.Context(), "state", "--server", srv.ClientURL(), "--group", "orders", "--timeout", "2s"); code != exitUsage {
		t.Fatalf("without the token: exit %d; want 2 (the test proves nothing otherwise)", code)
	}
}
