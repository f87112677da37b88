//go:build unix

package test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parti-io/parti"
	"github.com/parti-io/parti/internal/natstest"
)

// Issue 11, item 1, with the shipped example as a separate OS process:
// examples/fleet's worker gets SIGTERM and closes (or, with --leave,
// leaves); the log shows the close or the leave and no expiry.

var (
	fleetOnce sync.Once
	fleetBin  string
	fleetErr  error
)

// fleetBinary builds examples/fleet once per test run, into a directory of
// the temporary directory named after this checkout: each run overwrites
// the previous run's binary instead of leaving one more behind.
func fleetBinary(t *testing.T) string {
	t.Helper()
	fleetOnce.Do(func() {
		root, err := filepath.Abs("..")
		if err != nil {
			fleetErr = err
			return
		}
		sum := sha256.Sum256([]byte(root))
		dir := filepath.Join(os.TempDir(), "parti-fleet-"+hex.EncodeToString(sum[:6]))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fleetErr = err
			return
		}
		fleetBin = filepath.Join(dir, "fleet")
		out, err := exec.Command("go", "build", "-o", fleetBin, "../examples/fleet").CombinedOutput()
		if err != nil {
			fleetErr = fmt.Errorf("go build ./examples/fleet: %v\n%s", err, out)
		}
	})
	if fleetErr != nil {
		t.Fatal(fleetErr)
	}
	return fleetBin
}

// fleetProc is a running fleet worker; its stdout lines are collected.
type fleetProc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	errb  strings.Builder
	exit  chan error
}

func startFleetWorker(t *testing.T, args ...string) *fleetProc {
	t.Helper()
	p := &fleetProc{cmd: exec.Command(fleetBinary(t), append([]string{"worker"}, args...)...), exit: make(chan error, 1)}
	startProc(t, p, fmt.Sprintf("fleet worker %v", args))
	return p
}

// startProc starts p.cmd, collecting its stdout lines; it is killed when
// the test ends, and its output logged if the test failed.
func startProc(t *testing.T, p *fleetProc, name string) {
	t.Helper()
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = &lockedWriter{mu: &p.mu, w: &p.errb}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
		p.exit <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		if t.Failed() {
			p.mu.Lock()
			t.Logf("%s:\nstdout:\n%s\nstderr:\n%s", name, strings.Join(p.lines, "\n"), p.errb.String())
			p.mu.Unlock()
		}
	})
}

// count returns how many stdout lines contain s.
func (p *fleetProc) count(s string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.lines {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// terminate sends SIGTERM and waits for the exit.
func (p *fleetProc) terminate(t *testing.T) error {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exit:
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("the fleet worker did not exit within 60s of SIGTERM")
		return nil
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// SIGTERM closes the worker for a restart: its close is in the log, nobody
// expired it, and the same ID started again takes its partitions back with
// no move.
func TestFleetWorkerClosesOnSIGTERM(t *testing.T) {
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	const group, nparts = "fleetclose", 8
	args := []string{"--id", "worker-1", "--server", s.ClientURL(), "--group", group, "--partitions", fmt.Sprint(nparts)}
	w := startFleetWorker(t, args...)
	waitFor(t, 60*time.Second, "the worker to own every partition", func() bool { return w.count(" + ") == nparts })
	if err := w.terminate(t); err != nil {
		t.Fatalf("the worker exited with %v after SIGTERM, want 0", err)
	}
	if w.count("closed") != 1 {
		t.Fatal("the worker did not report a completed close")
	}
	if sum := summarize(groupLog(t, js, group), "worker-1"); sum.closing != 1 || sum.removed != 0 || sum.verdicts != 0 {
		t.Fatalf("log after SIGTERM: %+v, want one close and no expiry", sum)
	}
	w2 := startFleetWorker(t, args...)
	waitFor(t, 60*time.Second, "the restarted worker to own every partition", func() bool { return w2.count(" + ") == nparts })
	sum := summarize(groupLog(t, js, group), "worker-1")
	if sum.removed != 0 || sum.verdicts != 0 || sum.graceEnded != 0 || sum.movesAfterClose != 0 {
		t.Fatalf("log after the restart: %+v, want no expiry, no grace end, no move", sum)
	}
	if err := w2.terminate(t); err != nil {
		t.Fatalf("the restarted worker exited with %v, want 0", err)
	}
}

// SIGTERM with --leave hands the partitions off now: the leave is in the
// log, nobody expired the worker, and the member that stays owns everything
// well before an expiry could have passed.
func TestFleetWorkerLeavesOnSIGTERM(t *testing.T) {
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	const group, nparts = "fleetleave", 8
	cfg := parti.Production(group)
	cfg.ID = "stay"
	for i := range nparts {
		cfg.Partitions = append(cfg.Partitions, fmt.Sprintf("tenant-%03d", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stay, err := parti.Join(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer stay.Stop()
	w := startFleetWorker(t, "--id", "worker-1", "--server", s.ClientURL(), "--group", group, "--partitions", fmt.Sprint(nparts), "--leave")
	waitFor(t, 60*time.Second, "the group to settle with the worker owning partitions", func() bool {
		return stay.GroupSettled(2) && w.count(" + ") > 0 && len(stay.Assigned()) < nparts
	})
	began := time.Now()
	if err := w.terminate(t); err != nil {
		t.Fatalf("the worker exited with %v after SIGTERM, want 0", err)
	}
	waitFor(t, 60*time.Second, "the staying member to own everything", func() bool { return len(stay.Assigned()) == nparts })
	t.Logf("hand-off: %v from SIGTERM until the staying member owned every partition", time.Since(began).Round(time.Millisecond))
	if w.count("left") != 1 {
		t.Fatal("the worker did not report a completed leave")
	}
	if sum := summarize(groupLog(t, js, group), "worker-1"); sum.left != 1 || sum.removed != 0 || sum.verdicts != 0 {
		t.Fatalf("log after SIGTERM: %+v, want one leave and no expiry", sum)
	}
}

// fleet --help and fleet worker --help exit 0.
func TestFleetHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"worker", "--help"}, {"server", "-h"}} {
		if out, err := exec.Command(fleetBinary(t), args...).CombinedOutput(); err != nil {
			t.Errorf("fleet %v: %v\n%s", args, err, out)
		}
	}
}
