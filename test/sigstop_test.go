//go:build linux

package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/parti-io/parti"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/clock"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/internal/testhooks"
)

// Issue 7, item 1, with a real paused process: a member runs in a child
// process (this test binary, re-executed to run TestSigstopChild) and writes
// each partition it owns, with its fencing token, to a token-checking store
// served by the test process over NATS. The test stops the child with
// SIGSTOP and resumes it with SIGCONT. Every process reads CLOCK_BOOTTIME,
// which is system-wide, so the child's ownership intervals and the
// in-process members' share one time line.
//
// Linux only: it reads the process state from /proc.

// sigstopChildEnv carries the child's configuration (JSON) to the child.
const sigstopChildEnv = "PARTI_SIGSTOP_CHILD"

// childCfg is what the child is told.
type childCfg struct {
	URL    string `json:"url"`
	Group  string `json:"group"`
	ID     string `json:"id"`
	Prefix string `json:"prefix"` // <prefix>.write: the store; <prefix>.ev: the child's reports
	Parts  int    `json:"parts"`
}

// childEvent is one report of the child. Times are CLOCK_BOOTTIME readings.
type childEvent struct {
	Kind string `json:"k"` // assigned, stopped (its context ended), revoked, exit (a writer stopped), status
	Part string `json:"p,omitempty"`
	// Tok is the assignment's token.
	Tok events.Token  `json:"tok"`
	At  time.Duration `json:"at"`
	// Status: the member's incarnation, lease deadline and what Assigned
	// returns (partition → token).
	Inc      uint64                  `json:"inc,omitempty"`
	Deadline time.Duration           `json:"d,omitempty"`
	Owned    map[string]events.Token `json:"owned,omitempty"`
}

// childWork is how long the child application works on a partition between
// checking Owns and writing with the token it checked (uniform in
// [childWork/2, 3·childWork/2), so that the writers of different partitions
// do not run in step). A pause during the work makes the write stale, which
// is what fencing tokens are for; a pause while a write is in flight does
// not, and with independent writers it is all but impossible that every one
// is in flight at the stop.
const childWork = 40 * time.Millisecond

// TestSigstopChild is the child process of the TestSigstop tests; it is
// skipped unless the parent started it.
func TestSigstopChild(t *testing.T) {
	raw := os.Getenv(sigstopChildEnv)
	if raw == "" {
		t.Skip("the child process of the TestSigstop tests")
	}
	var cfg childCfg
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // the parent kills it long before
	defer cancel()
	nc, js := natstest.Connect(t, cfg.URL)
	boot := clock.Boot()
	report := func(ev childEvent) {
		b, _ := json.Marshal(ev)
		_ = nc.Publish(cfg.Prefix+".ev", b)
	}
	var mp atomic.Pointer[parti.Member]
	writer := func(a parti.Assignment) {
		m := mp.Load()
		for ; m == nil; m = mp.Load() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		name := fmt.Sprintf("%s#%d", cfg.ID, a.Token.Incarnation)
		body, _ := json.Marshal(storeWrite{Part: a.Partition, Writer: name, Token: a.Token})
		for ctx.Err() == nil {
			if !m.Owns(a.Partition, a.Token) {
				report(childEvent{Kind: "exit", Part: a.Partition, Tok: a.Token, At: boot.Now()})
				return
			}
			select { // the work between the check and the write
			case <-ctx.Done():
				return
			case <-time.After(childWork/2 + rand.N(childWork)):
			}
			if _, err := nc.Request(cfg.Prefix+".write", body, 5*time.Second); err != nil {
				t.Logf("write %s: %v", a.Partition, err)
			}
		}
	}
	// ended reports the end of an assignment with the member's lease
	// deadline at that moment (and its incarnation, read on both sides of
	// the deadline so the pair is consistent).
	ended := func(kind string, a parti.Assignment) {
		ev := childEvent{Kind: kind, Part: a.Partition, Tok: a.Token, At: boot.Now()}
		if m := mp.Load(); m != nil {
			inc := m.Incarnation()
			d := testhooks.LeaseDeadline(m)
			if m.Incarnation() == inc {
				ev.Inc, ev.Deadline = inc, d
			}
		}
		report(ev)
	}
	// The in-process fleet's profile (newFleet's base).
	pc := parti.Config{
		Group: cfg.Group, ID: cfg.ID, Partitions: partitions(cfg.Parts),
		Timings: testTimings(), Window: 300 * time.Millisecond, Grace: 20 * time.Second,
	}
	pc.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	pc.Handler = parti.HandlerFuncs{
		OnAssigned: func(a parti.Assignment) {
			report(childEvent{Kind: "assigned", Part: a.Partition, Tok: a.Token, At: boot.Now()})
			context.AfterFunc(a.Context, func() { ended("stopped", a) })
			go writer(a)
		},
		OnRevoked: func(a parti.Assignment, why parti.RevokeReason) { ended("revoked", a) },
	}
	m, err := parti.Join(ctx, js, pc)
	if err != nil {
		t.Fatal(err)
	}
	mp.Store(m)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.Done():
			t.Fatalf("member stopped: %v", m.Err())
		case <-tick.C:
		}
		owned := map[string]events.Token{}
		for _, a := range m.Assigned() {
			owned[a.Partition] = a.Token
		}
		report(childEvent{Kind: "status", At: boot.Now(), Inc: m.Incarnation(), Deadline: testhooks.LeaseDeadline(m), Owned: owned})
	}
}

// childView collects the child's reports.
type childView struct {
	mu     sync.Mutex
	events []childEvent
	last   childEvent // the latest status
}

func (v *childView) add(ev childEvent) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.events = append(v.events, ev)
	if ev.Kind == "status" && ev.At >= v.last.At {
		v.last = ev
	}
}

func (v *childView) status() childEvent {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.last
}

func (v *childView) all(keep func(childEvent) bool) []childEvent {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []childEvent
	for _, ev := range v.events {
		if keep(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// child is the running child process.
type child struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

// startChild starts the child process; it is killed when the test ends, and
// its output is logged if the test failed.
func startChild(t *testing.T, cfg childCfg) *child {
	t.Helper()
	raw, _ := json.Marshal(cfg)
	c := &child{cmd: exec.Command(os.Args[0], "-test.run=^TestSigstopChild$", "-test.count=1", "-test.v", "-test.timeout=3m")}
	c.cmd.Env = append(os.Environ(), sigstopChildEnv+"="+string(raw))
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.cmd.Process.Signal(syscall.SIGCONT)
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
		if t.Failed() {
			t.Logf("child output:\n%s", c.out.String())
		}
	})
	return c
}

// processState returns the state letter of a process from /proc (T: stopped).
func processState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

func sameTokens(a, b map[string]events.Token) bool {
	if len(a) != len(b) {
		return false
	}
	for p, t := range a {
		if b[p] != t {
			return false
		}
	}
	return true
}

// A member process stopped (SIGSTOP) for longer than the expiry: its lease
// ends, the group expires it and hands its partitions on, the new owners
// write with newer tokens. Resumed (SIGCONT), the child completes the writes
// it had started before the stop: the store rejects every one (their tokens
// are old), and the child stops treating the partitions as owned and rejoins
// as a new incarnation. No ownership intervals (bounded by the leases)
// overlap.
func TestSigstopPausedProcessIsFencedByTokens(t *testing.T) { sigstopScenario(t, true) }

// A member process stopped for less than the margin: nothing moves, no
// write is rejected, no intervals overlap.
func TestSigstopShortPauseMovesNothing(t *testing.T) { sigstopScenario(t, false) }

func sigstopScenario(t *testing.T, long bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	began := time.Now()
	defer func() { t.Logf("ran for %v", time.Since(began)) }()
	group, childID := "sigshort", "w03"
	if long {
		group = "sigstop"
	}
	prefix := "sigtest." + group
	s := natstest.Server(t)
	nc, js := natstest.Connect(t, s.ClientURL())
	st := newTokenStore()
	st.serve(t, nc, prefix+".write")
	cv := &childView{}
	sub, err := nc.Subscribe(prefix+".ev", func(m *nats.Msg) {
		var ev childEvent
		if json.Unmarshal(m.Data, &ev) == nil {
			cv.add(ev)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	const nparts = 24
	f := newFleet(t, js, group, nparts)
	stopAll(t, f)
	coldStart(t, ctx, f, 3)
	writeOwned(t, f, st, nil)
	tm := f.base.Timings
	ch := startChild(t, childCfg{URL: s.ClientURL(), Group: group, ID: childID, Prefix: prefix, Parts: nparts})
	pid := ch.cmd.Process.Pid
	boot := clock.Boot()

	// The child joined, the group settled with it, and it writes every
	// partition it owns.
	var childParts map[string]events.Token
	var childInc uint64
	waitFor(t, 60*time.Second, "the child to join, settle and write", func() bool {
		w00 := f.member("w00")
		if !w00.GroupSettled(4) {
			return false
		}
		for _, m := range f.all() {
			s := m.State()
			if len(m.Assigned()) != len(s.Owned(m.ID(), m.Incarnation())) {
				return false
			}
		}
		childParts = ownedBy(w00, childID)
		me := w00.State().Member(childID)
		status := cv.status()
		if len(childParts) == 0 || me == nil || status.Inc != me.Incarnation || !sameTokens(status.Owned, childParts) {
			return false
		}
		childInc = me.Incarnation
		for p, tok := range childParts {
			if len(st.writes(func(w storeWrite) bool { return w.OK && w.Part == p && w.Token == tok })) == 0 {
				return false
			}
		}
		return true
	})
	before := f.owners()
	incs := incarnations(f)
	old := fmt.Sprintf("%s#%d", childID, childInc)

	// Stop it while it is healthy: a fresh status shows a lease with most of
	// its length left (so the lease it had at the stop ends at most one lease
	// after the stop, and at least that status's deadline).
	var minDeadline time.Duration
	waitFor(t, 30*time.Second, "a fresh status of the child with a fresh lease", func() bool {
		cs := cv.status()
		now := boot.Now()
		minDeadline = cs.Deadline
		return cs.Inc == childInc && now-cs.At < 100*time.Millisecond && cs.Deadline-now > tm.Lease-tm.Heartbeat
	})
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the child to be stopped", func() bool { return processState(pid) == "T" })
	stopAt := boot.Now()

	var takeover time.Duration
	if long {
		waitFor(t, 30*time.Second, "the stopped child's partitions to be re-owned and written with newer tokens", func() bool {
			return boot.Now()-stopAt > tm.Expiry && reowned(f.member("w00"), childID, childParts) && st.newerAccepted(childParts)
		})
		takeover = takeoverAt(f.rec, st, childParts)
		t.Logf("stopped child's %d partitions taken over %v after the stop (lease %v, expiry %v)",
			len(childParts), takeover-stopAt, tm.Lease, tm.Expiry)
	} else {
		// Fault injection, not synchronisation: a pause below the margin.
		<-time.After(tm.Margin / 2)
	}
	// Read before the signal: the child may run before this process does
	// again.
	contAt := boot.Now()
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	paused := contAt - stopAt
	t.Logf("child paused for %v (margin %v, expiry %v)", paused, tm.Margin, tm.Expiry)

	if long {
		waitFor(t, 60*time.Second, "the resumed child to rejoin and the group to settle", func() bool {
			status := cv.status()
			me := f.member("w00").State().Member(childID)
			return status.At > contAt && status.Inc > childInc && me != nil && me.Incarnation == status.Inc &&
				f.member("w00").GroupSettled(4) && sameTokens(status.Owned, ownedBy(f.member("w00"), childID))
		})
		// Let every old writer finish its write in progress and exit.
		waitFor(t, 30*time.Second, "the child's writers of its old partitions to exit", func() bool {
			exited := map[string]bool{}
			for _, ev := range cv.all(func(ev childEvent) bool { return ev.Kind == "exit" && ev.At > contAt && ev.Tok == childParts[ev.Part] }) {
				exited[ev.Part] = true
			}
			return len(exited) == len(childParts)
		})
	} else {
		waitFor(t, 30*time.Second, "the resumed child to own and write its partitions again", func() bool {
			status := cv.status()
			if status.At <= contAt || status.Inc != childInc || !sameTokens(status.Owned, childParts) {
				return false
			}
			for p, tok := range childParts {
				if len(st.writes(func(w storeWrite) bool { return w.Part == p && w.Token == tok && w.At > contAt })) == 0 {
					return false
				}
			}
			return true
		})
		if paused >= tm.Margin {
			t.Skipf("the machine stretched a %v pause to %v, beyond the margin %v: nothing is promised", tm.Margin/2, paused, tm.Margin)
		}
	}

	// The child's beliefs, as ownership intervals on the shared boot clock:
	// from Assigned until its context ended or Revoked ran, and never past
	// the lease deadline the member reported then. oldDeadline is the last
	// lease deadline of the stopped incarnation.
	type key struct {
		part string
		tok  events.Token
	}
	ivs := map[key]*interval{}
	var oldDeadline time.Duration
	for _, ev := range cv.all(func(childEvent) bool { return true }) {
		k := key{ev.Part, ev.Tok}
		switch ev.Kind {
		case "assigned":
			ivs[k] = &interval{member: fmt.Sprintf("child-%s#%d", childID, ev.Tok.Incarnation), token: ev.Tok.String(), start: ev.At}
		case "stopped", "revoked":
			end := ev.At
			if ev.Inc == ev.Tok.Incarnation && ev.Deadline > 0 {
				end = min(end, ev.Deadline)
				if ev.Inc == childInc {
					oldDeadline = max(oldDeadline, ev.Deadline)
				}
			}
			if iv := ivs[k]; iv != nil && (iv.end == 0 || end < iv.end) {
				iv.end = end
			}
		}
	}
	if long {
		if oldDeadline == 0 {
			// Not reported (the incarnation changed as the assignments
			// ended): it cannot be later than one lease after the stop,
			// as no heartbeat was sent while the child was stopped and
			// none is acknowledged after the verdict.
			t.Logf("the stopped incarnation's last lease deadline was not reported; bounding it by the stop + lease")
			oldDeadline = stopAt + tm.Lease
		}
		t.Logf("the stopped incarnation's lease ended %v after the stop", oldDeadline-stopAt)
		if oldDeadline < minDeadline || oldDeadline > stopAt+tm.Lease {
			t.Errorf("the stopped incarnation's lease ended %v after the stop: outside [%v, lease %v]", oldDeadline-stopAt, minDeadline-stopAt, tm.Lease)
		}
		if takeover <= oldDeadline {
			t.Errorf("the partitions were taken over %v after the stop, before the child's lease ended (%v)", takeover-stopAt, oldDeadline-stopAt)
		}
	}
	f.rec.mu.Lock()
	for k, iv := range ivs {
		if long && k.tok.Incarnation == childInc && (iv.end == 0 || iv.end > oldDeadline) {
			iv.end = oldDeadline
		}
		f.rec.ivs[k.part] = append(f.rec.ivs[k.part], iv)
	}
	f.rec.mu.Unlock()
	f.checkNoOverlap()
	st.check(t)

	oldWrites := func(w storeWrite) bool { return w.Writer == old && w.At > contAt }
	if !long {
		if bad := st.writes(func(w storeWrite) bool { return !w.OK }); len(bad) != 0 {
			t.Errorf("a pause below the margin: the store rejected %d writes, first %+v", len(bad), bad[0])
		}
		if n := moved(before, f.owners()); n != 0 {
			t.Errorf("a pause below the margin moved %d partitions", n)
		}
		if me := f.member("w00").State().Member(childID); me == nil || me.Incarnation != childInc {
			t.Errorf("a pause below the margin expired the child")
		}
		for id, inc := range incarnations(f) {
			if inc != incs[id] {
				t.Errorf("member %s was expired: incarnation %d → %d", id, incs[id], inc)
			}
		}
		t.Logf("%d writes of the child accepted after it resumed, none rejected", len(st.writes(oldWrites)))
		return
	}

	after := st.writes(oldWrites)
	rejected := 0
	perPart := map[string]int{}
	for _, w := range after {
		perPart[w.Part]++
		if w.OK {
			t.Errorf("the store accepted a write of the resumed child with its old token: %+v", w)
		} else {
			rejected++
		}
	}
	if rejected == 0 {
		t.Fatal("the resumed child attempted no stale write: the test shows nothing")
	}
	for p, n := range perPart {
		// The write in progress at the stop, and at most one request sent
		// just before it and flushed after the resumption.
		if n > 2 {
			t.Errorf("the resumed child kept writing %s with its old token: %d attempts", p, n)
		}
	}
	if bad := st.writes(func(w storeWrite) bool { return !w.OK && w.Writer != old }); len(bad) != 0 {
		t.Errorf("the store rejected %d writes of current owners, first %+v", len(bad), bad[0])
	}
	for _, ev := range cv.all(func(ev childEvent) bool { return ev.Kind == "status" && ev.At > contAt }) {
		for p, tok := range ev.Owned {
			if old, ok := childParts[p]; ok && tok == old {
				t.Errorf("resumed, the child still reports %s owned with its old token %s", p, tok)
			}
		}
	}
	if f.member("w00").State().Incarnation(childID, childInc) != nil {
		t.Errorf("the stopped incarnation %s is still a member", old)
	}
	for id, inc := range incarnations(f) {
		if inc != incs[id] {
			t.Errorf("healthy member %s was expired: incarnation %d → %d", id, incs[id], inc)
		}
	}
	t.Logf("resumed child: %d stale writes rejected over %d partitions; rejoined as incarnation %d",
		rejected, len(perPart), cv.status().Inc)
}
