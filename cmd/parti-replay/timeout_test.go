package main

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/faultproxy"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/projection"
	"github.com/parti-io/parti/replay/replaytest"
)

// TestEveryCommandTimesOut: against a server that stops answering
// JetStream requests (the connection stays up: a lost request), every
// reading command gives up after --timeout with exit status 2, saying what
// it was waiting for, instead of waiting forever.
func TestEveryCommandTimesOut(t *testing.T) {
	url, _, b := liveServer(t, t.TempDir())
	replaytest.Scenario(b)
	proxy, err := faultproxy.Start(strings.TrimPrefix(url, "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	var dropped atomic.Int32
	proxy.SetDropPublish(func(subject string) bool {
		if strings.HasPrefix(subject, "$JS.API.") {
			dropped.Add(1)
			return true
		}
		return false
	})
	for _, cmd := range [][]string{
		{"state"}, {"audit"}, {"explain", "p-0"}, {"diff", "3", "5"}, {"whatif", "--window", "1s"},
		{"export", "--out", t.TempDir() + "/x.jsonl"}, {"tail"}, {"migrate", "--to", "orders-g2"},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		args := append(cmd, "--server", proxy.URL(), "--group", "orders", "--timeout", "500ms")
		start := time.Now()
		_, stderr, code := runCLI(ctx, args...)
		took := time.Since(start)
		expired := ctx.Err() != nil
		cancel()
		if expired {
			t.Fatalf("%s hung until the test's deadline", cmd[0])
		}
		if code != exitUsage || !strings.Contains(stderr, "waiting for") && !strings.Contains(stderr, "timed out") {
			t.Errorf("%s on a silent server: exit %d after %v, stderr %q; want exit 2 naming what it waited for", cmd[0], code, took, stderr)
		}
	}
	if dropped.Load() == 0 {
		t.Fatal("no request was dropped: the test tests nothing")
	}
}

// TestTailWaitsForTheStream: tail started before the group's stream exists
// says so once and waits; it shows the stream's records once it appears.
// With --no-wait it fails.
func TestTailWaitsForTheStream(t *testing.T) {
	srv := natstest.Server(t)
	_, js := natstest.Connect(t, srv.ClientURL())
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	_, stderr, code := runCLI(ctx, "tail", "--server", srv.ClientURL(), "--group", "orders", "--no-wait")
	if code != exitUsage {
		t.Fatalf("tail --no-wait on a missing stream: exit %d, stderr %q", code, stderr)
	}

	tctx, stop := context.WithCancel(ctx)
	defer stop()
	out, errOut := newWatchBuffer(), newWatchBuffer()
	done := make(chan int, 1)
	go func() {
		done <- run(tctx, []string{"tail", "--server", srv.ClientURL(), "--group", "orders"}, out, errOut)
	}()
	errOut.waitFor(t, "a waiting notice", 20*time.Second, func(s string) bool { return strings.Contains(s, "does not exist yet") })

	if _, err := projection.Provision(ctx, js, projection.StreamConfig{Group: "orders"}); err != nil {
		t.Fatal(err)
	}
	errOut.waitFor(t, "the follow notice", 20*time.Second, func(s string) bool { return strings.Contains(s, "following") })
	subj, _ := events.NewSubjects("orders")
	b, err := replaytest.NewBuilder("orders", &replaytest.AppenderEmitter{Ctx: ctx, App: projection.NewAppender(js, subj), JS: js})
	if err != nil {
		t.Fatal(err)
	}
	b.Claim("worker-0")
	out.waitFor(t, "the first record", 20*time.Second, func(s string) bool { return strings.Contains(s, "worker-0") })
	stop()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("tail ended with %d: %s", code, errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("tail did not stop when interrupted")
	}
	if n := strings.Count(errOut.String(), "does not exist yet"); n != 1 {
		t.Fatalf("the waiting notice was printed %d times, want once:\n%s", n, errOut.String())
	}
}
