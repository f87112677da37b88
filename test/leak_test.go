package test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/parti-io/parti/internal/natstest"
)

// partiGoroutines returns the stacks of goroutines running parti's code
// (the embedded server's own goroutines and the test's are not counted). A
// goroutine parti started counts wherever it is, in a test's handler too: a
// member's dispatcher caught inside a test's Revoked must not pass for gone.
func partiGoroutines() []string {
	buf := make([]byte, 4<<20)
	n := runtime.Stack(buf, true)
	var out []string
	ours := func(s string) bool {
		return strings.Contains(s, "github.com/parti-io/parti") &&
			!strings.Contains(s, "github.com/parti-io/parti/test.") &&
			!strings.Contains(s, "github.com/parti-io/parti/internal/natstest")
	}
	for _, g := range strings.Split(string(buf[:n]), "\n\n") {
		created := ""
		if i := strings.LastIndex(g, "\ncreated by "); i >= 0 {
			created = g[i:]
		}
		if ours(g) || ours(created) {
			out = append(out, g)
		}
	}
	return out
}

// Members that leave, stop or close leave no goroutine behind, and a
// member's goroutine count does not grow with time.
func TestMembersLeaveNoGoroutinesBehind(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	f := newFleet(t, js, "leak", 32)
	coldStart(t, ctx, f, 3)
	steady := len(partiGoroutines())
	if steady == 0 {
		t.Fatal("no member goroutines found: the filter is broken")
	}
	// Many heartbeat intervals later the count is the same (give or take the
	// short-lived publish goroutines of one step).
	deadline := time.Now().Add(10 * f.base.Timings.Heartbeat)
	waitFor(t, time.Minute, "ten heartbeat intervals", func() bool { return time.Now().After(deadline) })
	f.waitSettled(30 * time.Second)
	if later := len(partiGoroutines()); later > steady+6 {
		t.Fatalf("member goroutines grew from %d to %d over ten heartbeats", steady, later)
	}
	ms := f.all()
	if err := ms[0].Leave(ctx); err != nil {
		t.Fatal(err)
	}
	ms[1].Stop()
	if err := ms[2].Close(ctx); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		left := partiGoroutines()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of parti left after every member stopped:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		<-time.After(20 * time.Millisecond)
	}
}
