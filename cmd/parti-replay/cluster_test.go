package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/projection"
	"github.com/parti-io/parti/replay/replaytest"
)

// readerRuns is how many state and audit runs TestReadersOnAClusterNeverHang
// makes: READERS_RUNS, else 120 (within make test's budget; make chaos runs
// 600).
func readerRuns(t *testing.T) int {
	t.Helper()
	if s := os.Getenv("READERS_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("READERS_RUNS=%q: want a positive count", s)
		}
		return n
	}
	return 120
}

// TestReadersOnAClusterNeverHang runs state and audit, alternately, against
// a three-server cluster whose servers are shut down and restarted all the
// while (any server, every other time the stream's leader; the stream has
// three replicas). Every run must end within its deadline — succeed with
// the answer it gave before the faults, or fail with exit status 2 — and
// never hang: issue 13 saw 1 run in 300 hang forever. The deadline is the
// command's --timeout plus a margin for its last request: a run that needs
// longer is waiting on something the timeout does not bound.
//
// READERS_RUNS sets the number of runs (make chaos: 600); CHAOS_SEED
// replays a fault schedule.
func TestReadersOnAClusterNeverHang(t *testing.T) {
	runs := readerRuns(t)
	seed := time.Now().UnixNano()
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("CHAOS_SEED: %v", err)
		}
	}
	t.Logf("seed %d (CHAOS_SEED replays the fault schedule)", seed)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()

	c := natstest.NewCluster(t)
	servers := c.AllURLs() // restarts keep the client ports
	_, js := natstest.Connect(t, servers)
	pctx, pcancel := context.WithTimeout(ctx, time.Minute) // a provision that hangs fails here, not at the test timeout
	defer pcancel()
	if _, err := projection.Provision(pctx, js, projection.StreamConfig{Group: "orders", Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	subj, _ := events.NewSubjects("orders")
	b, err := replaytest.NewBuilder("orders", &replaytest.AppenderEmitter{Ctx: ctx, App: projection.NewAppender(js, subj), JS: js})
	if err != nil {
		t.Fatal(err)
	}
	replaytest.Scenario(b)
	if b.Err() != nil {
		t.Fatal(b.Err())
	}

	const timeout = time.Second
	args := func(cmd string) []string {
		return []string{cmd, "--server", servers, "--group", "orders", "--timeout", timeout.String(), "--json"}
	}
	want := map[string]string{}
	wantCode := map[string]int{}
	for _, cmd := range []string{"state", "audit"} {
		out, errOut, code := runCLI(ctx, args(cmd)...)
		// The scenario holds junk no member writes: audit finds it (exit
		// 1), and must find the same with every server fault.
		if code != exitOK && !(cmd == "audit" && code == exitViolations) {
			t.Fatalf("%s before any fault: exit %d: %s", cmd, code, errOut)
		}
		want[cmd], wantCode[cmd] = withoutHeartbeats(t, out), code
	}

	// The faults: shut a server down (every other time the stream's
	// leader), keep it down a while, restart it, wait until the cluster
	// sees it again, rest a while.
	faultsDone := make(chan struct{})
	stopFaults := make(chan struct{})
	var faults atomic.Int32
	go func() {
		defer close(faultsDone)
		rng := rand.New(rand.NewSource(seed))
		pause := func(d time.Duration) bool {
			tm := time.NewTimer(d)
			defer tm.Stop()
			select {
			case <-stopFaults:
				return false
			case <-tm.C:
				return true
			}
		}
		for n := 0; ; n++ {
			if !pause(time.Duration(200+rng.Intn(800)) * time.Millisecond) {
				return
			}
			i := rng.Intn(len(c.Servers))
			if n%2 == 0 {
				for j, s := range c.Servers {
					if s.JetStreamIsStreamLeader("$G", projection.StreamName("orders")) {
						i = j
					}
				}
			}
			c.Stop(i)
			faults.Add(1)
			down := pause(time.Duration(300+rng.Intn(1500)) * time.Millisecond)
			c.Restart(i)
			c.WaitMetaLeader(time.Minute)
			if !down {
				return
			}
		}
	}()

	type result struct {
		cmd  string
		code int
		took time.Duration
		err  string
		out  string
		ok   bool // exit 0 with the answer given before the faults
	}
	minFaults := max(3, runs/50)
	results := make(chan result, 1024)
	var collected []result
	collectDone := make(chan struct{})
	go func() {
		defer close(collectDone)
		for r := range results {
			collected = append(collected, r)
		}
	}()
	var next atomic.Int32
	var wg sync.WaitGroup
	deadline := timeout*4 + 5*time.Second
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(next.Add(1))
				// At least runs runs, and on until minFaults shutdowns
				// happened: on a quiet machine the runs are fast.
				if n > runs && int(faults.Load()) >= minFaults || ctx.Err() != nil {
					return
				}
				cmd := []string{"state", "audit"}[n%2]
				rctx, cancel := context.WithTimeout(ctx, deadline)
				start := time.Now()
				out, errOut, code := runCLI(rctx, args(cmd)...)
				took := time.Since(start)
				hung := rctx.Err() != nil
				cancel()
				if hung {
					code = -1 // the run had to be interrupted: a hang
				}
				results <- result{cmd: cmd, code: code, took: took, err: errOut, out: out, ok: code == wantCode[cmd] && withoutHeartbeats(t, out) == want[cmd]}
			}
		}()
	}
	wg.Wait()
	close(stopFaults)
	<-faultsDone
	close(results)
	<-collectDone

	var ok, failed, hangs, wrong int
	var slowest time.Duration
	var failures []string
	for _, r := range collected {
		slowest = max(slowest, r.took)
		switch {
		case r.code == -1:
			hangs++
			t.Errorf("%s hung: interrupted after %v (stderr: %s)", r.cmd, r.took, strings.TrimSpace(r.err))
		case r.ok:
			ok++
		case r.code == exitUsage:
			failed++
			if len(failures) < 5 {
				failures = append(failures, fmt.Sprintf("%s after %v: %s", r.cmd, r.took.Round(time.Millisecond), strings.TrimSpace(r.err)))
			}
		default:
			wrong++
			t.Errorf("%s: exit %d with an answer other than the one before the faults (stderr: %s); -before +now:\n%s",
				r.cmd, r.code, strings.TrimSpace(r.err), cmp.Diff(want[r.cmd], withoutHeartbeats(t, r.out)))
		}
	}
	t.Logf("%d runs of state and audit, %d server shutdowns: %d right answers, %d failed with exit 2 within the timeout, %d hangs, %d wrong; slowest %v (deadline %v)",
		len(collected), faults.Load(), ok, failed, hangs, wrong, slowest.Round(time.Millisecond), deadline)
	for _, f := range failures {
		t.Logf("a failure: %s", f)
	}
	if int(faults.Load()) < minFaults {
		t.Errorf("%d servers were shut down during the runs, want at least %d", faults.Load(), minFaults)
	}
	if ok == 0 {
		t.Errorf("no run succeeded")
	}
}

// TestTailFollowsThroughServerRestarts: tail on a three-server cluster
// shows every record appended while servers (the stream's leader among
// them) are shut down and restarted, once each and in order: the
// consumers it rebuilds neither skip nor repeat a record.
func TestTailFollowsThroughServerRestarts(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	c := natstest.NewCluster(t)
	servers := c.AllURLs() // restarts keep the client ports
	_, js := natstest.Connect(t, servers)
	if _, err := projection.Provision(ctx, js, projection.StreamConfig{Group: "orders", Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	subj, _ := events.NewSubjects("orders")

	tctx, stopTail := context.WithCancel(ctx)
	defer stopTail()
	out, errOut := newWatchBuffer(), newWatchBuffer()
	done := make(chan int, 1)
	go func() {
		done <- run(tctx, []string{"tail", "--server", servers, "--group", "orders", "--json", "--timeout", "20s"}, out, errOut)
	}()
	errOut.waitFor(t, "the follow notice", 30*time.Second, func(s string) bool { return strings.Contains(s, "following") })
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("tail's stderr:\n%s", errOut.String())
		}
	})

	// Append numbered records (garbage to the fold, shown by tail),
	// retrying through elections; restart a server, the stream's leader
	// first, three times meanwhile.
	// Each attempt has its own timeout: a request lost with a dying leader
	// would otherwise wait for the whole test's context. A message ID makes
	// a retry of a publish that was stored after all acknowledge the first
	// copy's sequence instead of storing a second one.
	var acked []uint64
	publish := func() {
		for {
			n := len(acked)
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			a, err := js.Publish(pctx, subj.Log(), []byte(fmt.Sprintf("record %d", n)), jetstream.WithMsgID(fmt.Sprintf("record-%d", n)))
			cancel()
			if err == nil {
				acked = append(acked, a.Sequence)
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("publish: %v", err)
			}
		}
	}
	for round := range 3 {
		for range 10 {
			publish()
		}
		i := round
		for j, s := range c.Servers {
			if round == 0 && s.JetStreamIsStreamLeader("$G", projection.StreamName("orders")) {
				i = j
			}
		}
		c.Stop(i)
		for range 10 {
			publish()
		}
		c.Restart(i)
		c.WaitMetaLeader(time.Minute)
	}
	for range 10 {
		publish()
	}
	want := fmt.Sprintf(`{"seq":%d,`, acked[len(acked)-1])
	out.waitFor(t, "the last record", time.Minute, func(s string) bool {
		select {
		case code := <-done:
			t.Fatalf("tail ended with %d before showing every record: %s", code, errOut.String())
		default:
		}
		return strings.Contains(s, want)
	})
	stopTail()
	if code := <-done; code != exitOK {
		t.Fatalf("tail ended with %d: %s", code, errOut.String())
	}
	var shown []uint64
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var ev struct{ Seq uint64 }
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		shown = append(shown, ev.Seq)
	}
	if !slices.Equal(shown, acked) {
		t.Fatalf("tail showed %d records %v;\nthe stream acknowledged %d: %v", len(shown), shown, len(acked), acked)
	}
}

// withoutHeartbeats drops state's heartbeats section from its JSON: the
// members' heartbeat ages change from run to run, the state must not.
func withoutHeartbeats(t *testing.T, out string) string {
	var v map[string]any
	if json.Unmarshal([]byte(out), &v) != nil {
		return out
	}
	if _, ok := v["heartbeats"]; !ok {
		return out
	}
	delete(v, "heartbeats")
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Error(err)
		return out
	}
	return string(b)
}
