package test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/projection"
)

// worker is one upgradeworker process.
type worker struct {
	id, build string
	cmd       *exec.Cmd
	out       bytes.Buffer
	done      chan struct{}
	err       error
}

// upgradeBinaries builds the test worker twice, at protocol version 1 and
// with the test-only version 2 (build tag partiv2), once per test run.
var upgradeBinaries = sync.OnceValues(func() (map[string]string, error) {
	dir, err := os.MkdirTemp("", "parti-upgrade-")
	if err != nil {
		return nil, err
	}
	bins := map[string]string{}
	for build, tags := range map[string][]string{"v1": nil, "v2": {"-tags", "partiv2"}} {
		bin := filepath.Join(dir, "worker-"+build)
		args := append([]string{"build", "-o", bin}, tags...)
		args = append(args, "./internal/upgradeworker")
		cmd := exec.Command("go", args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go %v: %w\n%s", args, err, out)
		}
		bins[build] = bin
	}
	return bins, nil
})

func startWorker(t *testing.T, bin, build, url, group, id string) *worker {
	t.Helper()
	w := &worker{id: id, build: build, done: make(chan struct{})}
	w.cmd = exec.Command(bin, "-server", url, "-group", group, "-id", id)
	w.cmd.Stdout, w.cmd.Stderr = &w.out, &w.out
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.err = w.cmd.Wait(); close(w.done) }()
	t.Cleanup(func() {
		_ = w.cmd.Process.Kill()
		<-w.done
		if t.Failed() {
			t.Logf("%s (%s) output:\n%s", w.id, w.build, w.out.String())
		}
	})
	return w
}

// exitCode waits for w to exit and returns its exit code.
func (w *worker) exitCode(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-w.done:
	case <-time.After(timeout):
		t.Fatalf("%s (%s) still runs after %v", w.id, w.build, timeout)
	}
	var ee *exec.ExitError
	if errors.As(w.err, &ee) {
		return ee.ExitCode()
	}
	if w.err != nil {
		t.Fatalf("%s: %v", w.id, w.err)
	}
	return 0
}

func (w *worker) running() bool {
	select {
	case <-w.done:
		return false
	default:
		return true
	}
}

// TestRollingUpgradeToVersion2 upgrades a running fleet of three version-1
// processes, one at a time (close for restart, then the same ID in a
// version-2 process), to a test-only protocol version 2, and checks what
// DESIGN's protocol-upgrade clarification promises (issue 12, item 4):
//
//   - nothing moves: from the first settled state to the end, every
//     partition keeps its owner's ID and is never unowned;
//   - nobody stops: every process runs until the test closes it;
//   - the leader raises the group to version 2 only once every live member
//     speaks it, and from then on the log holds version-2 envelopes;
//   - a version-1 process that joins the version-2 group is refused by Join
//     (exit 4) without appending anything to the group's stream.
func TestRollingUpgradeToVersion2(t *testing.T) {
	if events.MaxVersion != 1 {
		t.Skip("this build speaks version", events.MaxVersion)
	}
	bins, err := upgradeBinaries()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	const group = "upgrade"
	ids := []string{"w0", "w1", "w2"}
	workers := map[string]*worker{}
	for _, id := range ids {
		workers[id] = startWorker(t, bins["v1"], "v1", s.ClientURL(), group, id)
	}
	waitFor(t, 60*time.Second, "the group's stream", func() bool {
		_, err := js.Stream(ctx, projection.StreamName(group))
		return err == nil
	})
	view := observeAnyVersion(t, ctx, js, group)
	settled := func(s *decider.State, wantProtocol uint16) bool {
		live := s.LiveMembers()
		if len(live) != len(ids) || len(s.Partitions) == 0 || s.Window || s.InFlight() != 0 || s.Unowned() != 0 {
			return false
		}
		for _, m := range live {
			if m.Closing || maxProto(m.MaxProtocol) < wantProtocol {
				return false
			}
		}
		return true
	}
	waitFor(t, 60*time.Second, "the version-1 fleet to settle", func() bool { return settled(view(), 1) })
	first := view()
	owners := map[string]string{}
	for i, o := range first.Owners {
		owners[first.Partitions[i]] = o.Owner
	}

	// Sample the fold throughout: an owner changing ID or a partition
	// without an owner is a move.
	var mu sync.Mutex
	var changes []string
	sampleDone := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampleDone)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
			s := view()
			for i, o := range s.Owners {
				if o.Owner != owners[s.Partitions[i]] || o.Target != "" {
					mu.Lock()
					changes = append(changes, fmt.Sprintf("%s at %d: owner %q target %q", s.Partitions[i], s.LastSeq, o.Owner, o.Target))
					mu.Unlock()
				}
			}
		}
	}()

	for _, id := range ids {
		old := workers[id]
		if err := old.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := old.exitCode(t, 30*time.Second); code != 0 {
			t.Fatalf("%s (v1) exited %d on close", id, code)
		}
		workers[id] = startWorker(t, bins["v2"], "v2", s.ClientURL(), group, id)
		waitFor(t, 60*time.Second, id+"'s version-2 incarnation to take over", func() bool {
			s := view()
			m := s.Member(id)
			return m != nil && m.MaxProtocol == 2 && settled(s, 1)
		})
		if s := view(); s.Protocol > 1 && id != ids[len(ids)-1] {
			t.Fatalf("group raised to version %d while a version-1 member is live", s.Protocol)
		}
	}
	waitFor(t, 30*time.Second, "the leader to raise the group to version 2", func() bool {
		s := view()
		return s.Protocol == 2 && settled(s, 2)
	})
	// Members write at version 2 from then on: wait for a v2 envelope on
	// a heartbeat subject (the log may stay quiet).
	subj, _ := events.NewSubjects(group)
	st, err := js.Stream(ctx, projection.StreamName(group))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "a version-2 heartbeat", func() bool {
		s := view()
		m := s.Member(ids[0])
		if m == nil {
			return false
		}
		raw, err := st.GetLastMsgForSubject(ctx, subj.Heartbeat(m.ID, m.Incarnation))
		return err == nil && bytes.HasPrefix(raw.Data, []byte(`{"v":2,`))
	})
	close(stopSampling)
	<-sampleDone
	mu.Lock()
	if len(changes) > 0 {
		t.Fatalf("the upgrade moved partitions (%d sightings), first: %s", len(changes), changes[0])
	}
	mu.Unlock()
	for _, id := range ids {
		if !workers[id].running() {
			t.Fatalf("%s (v2) stopped during the upgrade", id)
		}
	}

	// A version-1 process joining the version-2 group is refused, and
	// appends nothing.
	before := streamLastSeq(t, ctx, js, projection.StreamName(group))
	late := startWorker(t, bins["v1"], "v1", s.ClientURL(), group, "w3")
	if code := late.exitCode(t, 60*time.Second); code != 4 {
		t.Fatalf("a version-1 process joining the version-2 group exited %d, want 4 (refused)", code)
	}
	if _, err := st.GetLastMsgForSubject(ctx, subj.Log()); err != nil {
		t.Fatal(err)
	}
	for _, r := range logAfter(t, ctx, js, group, before) {
		if c, ok := r.Event.(*events.MemberClaimed); ok && c.ID == "w3" {
			t.Fatalf("the refused version-1 process appended its claim at %d", r.Seq)
		}
	}
	for _, id := range ids {
		if !workers[id].running() {
			t.Fatalf("%s (v2) stopped after the refused join", id)
		}
	}
	t.Logf("rolling upgrade v1 → v2 of %d processes: 0 moves, 0 stops; group at version %d; a late v1 joiner refused", len(ids), view().Protocol)
}

func maxProto(v uint16) uint16 { return max(v, 1) }

// observeAnyVersion folds group's log as it grows, for a test built at
// version 1 that watches a group upgraded to the test-only version 2: the
// second version's events are encoded exactly as the first's, so each
// version-2 envelope is read as version 1. It returns a function giving a
// copy of the state folded so far.
func observeAnyVersion(t *testing.T, ctx context.Context, js jetstream.JetStream, group string) func() *decider.State {
	t.Helper()
	subj, _ := events.NewSubjects(group)
	cons, err := js.OrderedConsumer(ctx, projection.StreamName(group), jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj.Log()}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	st := decider.New()
	cc, err := cons.Consume(func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			return
		}
		body := m.Data()
		if bytes.HasPrefix(body, []byte(`{"v":2,`)) {
			body = append([]byte(`{"v":1,`), body[len(`{"v":2,`):]...)
		}
		mu.Lock()
		defer mu.Unlock()
		decider.Apply(st, events.NewRecord(meta.Sequence.Stream, meta.Timestamp, m.Subject(), nil, body))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return func() *decider.State {
		mu.Lock()
		defer mu.Unlock()
		return st.Clone()
	}
}
