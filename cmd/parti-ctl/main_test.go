package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parti-io/parti/internal/waitfor"

	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/replay"
)

// fleetBin is the fleet example, built once for the package's tests.
var fleetBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "parti-ctl-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fleetBin = filepath.Join(dir, "fleet")
	if out, err := exec.Command("go", "build", "-o", fleetBin, "../../examples/fleet").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build the fleet example: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a fleet process whose output lines the test can wait for.
type proc struct {
	cmd   *exec.Cmd
	lines chan string
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(fleetBin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, lines: make(chan string, 4096)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return p
}

func (p *proc) await(t *testing.T, s string) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("%s exited before printing %q", p.cmd.Path, s)
			}
			if strings.Contains(line, s) {
				return line
			}
		case <-deadline:
			t.Fatalf("no %q within 30s", s)
		}
	}
}

// state reads the group's state as parti-replay does.
func state(t *testing.T, url, group string) *replay.StateReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := replay.Connect(ctx, replay.ConnectOptions{Server: url})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	src, err := conn.Source(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	st, err := replay.StateAt(ctx, src, replay.Point{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func waitState(t *testing.T, url, group, what string, cond func(*replay.StateReport) bool) {
	t.Helper()
	var st *replay.StateReport
	// Each look reads the group's whole history: every 100 ms.
	waitfor.Poll(t, 40*time.Second, 100*time.Millisecond, func() bool {
		st = state(t, url, group)
		return cond(st)
	}, func() string { return fmt.Sprintf("no %s within 40s; phase %s, loads %+v", what, st.Phase, st.Loads) })
}

func owned(st *replay.StateReport, id string) int {
	n := 0
	for _, o := range st.State.Owners {
		if o.Owner == id {
			n++
		}
	}
	return n
}

func ctl(t *testing.T, stdin io.Reader, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	code := run(context.Background(), args, stdin, &out, &errb)
	return code, out.String(), errb.String()
}

// TestEveryActionAgainstTheFleet runs the fleet example (a server and three
// workers, each its own process) and drives every action through parti-ctl,
// checking each in the group's state; then the refusals.
func TestEveryActionAgainstTheFleet(t *testing.T) {
	port := natstest.FreePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	srv := start(t, "server", "--port", fmt.Sprint(port), "--store", t.TempDir())
	srv.await(t, "JetStream server at")
	for _, id := range []string{"worker-1", "worker-2", "worker-3"} {
		w := start(t, "worker", "--id", id, "--server", url, "--partitions", "12")
		w.await(t, "joined group")
	}
	const g = "fleet"
	waitState(t, url, g, "three members sharing 12 partitions", func(st *replay.StateReport) bool {
		return st.Phase == "stable" && len(st.State.Members) == 3 && st.Unowned == 0 && owned(st, "worker-1") > 0 && owned(st, "worker-2") > 0 && owned(st, "worker-3") > 0
	})
	common := []string{"--server", url, "--group", g, "--by", "tester", "--yes"}
	do := func(args ...string) string {
		t.Helper()
		code, out, errs := ctl(t, nil, append(args, common...)...)
		if code != exitOK {
			t.Fatalf("parti-ctl %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
		}
		if !strings.Contains(out, "appended seq ") || !strings.Contains(out, "action="+args[0]) || !strings.Contains(out, "by=tester") || !strings.Contains(out, "the group applied it") {
			t.Fatalf("parti-ctl %s printed:\n%s", strings.Join(args, " "), out)
		}
		return out
	}

	do("cordon", "worker-1")
	waitState(t, url, g, "worker-1 cordoned", func(st *replay.StateReport) bool { return st.State.Members["worker-1"].Cordoned })
	do("uncordon", "worker-1")
	waitState(t, url, g, "worker-1 uncordoned", func(st *replay.StateReport) bool { return !st.State.Members["worker-1"].Cordoned })

	do("drain", "worker-2")
	waitState(t, url, g, "worker-2 drained", func(st *replay.StateReport) bool { return owned(st, "worker-2") == 0 && st.Unowned == 0 })
	do("uncordon", "worker-2")

	do("pause")
	waitState(t, url, g, "the group paused", func(st *replay.StateReport) bool { return st.State.Paused })
	do("resume")
	waitState(t, url, g, "the group resumed", func(st *replay.StateReport) bool { return !st.State.Paused })

	do("move", "tenant-000", "worker-3")
	waitState(t, url, g, "tenant-000 on worker-3", func(st *replay.StateReport) bool {
		i, ok := st.State.PartitionIndex("tenant-000")
		return ok && st.State.Owners[i].Owner == "worker-3"
	})

	inc := state(t, url, g).State.Members["worker-1"].Incarnation
	do("force-expire", "worker-1")
	// The process sees its incarnation removed and joins again as a new one.
	waitState(t, url, g, "worker-1's incarnation removed and its partitions owned again", func(st *replay.StateReport) bool {
		m := st.State.Members["worker-1"]
		return (m == nil || m.Incarnation > inc) && st.Unowned == 0 && st.State.LastInc["worker-1"] >= inc
	})

	// Refusals: exit 1 with the reason, nothing appended.
	before := state(t, url, g).End.Seq
	for _, args := range [][]string{
		{"drain", "nobody"},
		{"move", "tenant-001", "nobody"},
		{"move", "no-such-partition", "worker-3"},
		{"force-expire", "nobody"},
		{"force-expire", "worker-3/99"}, // an incarnation that never was
		{"cordon", "nobody"},
	} {
		code, _, errs := ctl(t, nil, append(args, common...)...)
		if code != exitRefused || !strings.Contains(errs, "refused") {
			t.Errorf("parti-ctl %s: exit %d, stderr %q; want 1 and the reason", strings.Join(args, " "), code, errs)
		}
	}
	if code, _, errs := ctl(t, nil, append([]string{"force-expire", "worker-3/x"}, common...)...); code != exitUsage {
		t.Errorf("force-expire worker-3/x: exit %d, %q; want 2", code, errs)
	}
	if after := state(t, url, g).End.Seq; after != before {
		t.Errorf("refused actions appended records: seq %d → %d", before, after)
	}
}

// TestConfirmation checks the prompt: without --yes a non-terminal stdin is
// refused with a usage error, a terminal's "n" appends nothing, and "y"
// appends.
func TestConfirmation(t *testing.T) {
	s := natstest.Server(t)
	w := start(t, "worker", "--id", "worker-1", "--server", s.ClientURL(), "--group", "confirm", "--partitions", "4")
	w.await(t, "joined group")
	base := []string{"pause", "--server", s.ClientURL(), "--group", "confirm", "--by", "tester"}
	if code, _, errs := ctl(t, strings.NewReader("y\n"), base...); code != exitUsage || !strings.Contains(errs, "--yes") {
		t.Fatalf("no terminal, no --yes: exit %d, %q; want 2 naming --yes", code, errs)
	}
	old := isTerminal
	isTerminal = func(io.Reader) bool { return true }
	defer func() { isTerminal = old }()
	before := state(t, s.ClientURL(), "confirm").End.Seq
	if code, out, _ := ctl(t, strings.NewReader("n\n"), base...); code != exitRefused || !strings.Contains(out, "append it? [y/N]") {
		t.Fatalf("answered n: exit %d, %q; want 1 after the prompt", code, out)
	}
	if after := state(t, s.ClientURL(), "confirm").End.Seq; after != before {
		t.Fatalf("a declined action was appended: seq %d → %d", before, after)
	}
	if code, out, errs := ctl(t, strings.NewReader("y\n"), base...); code != exitOK {
		t.Fatalf("answered y: exit %d\n%s%s", code, out, errs)
	}
	if !state(t, s.ClientURL(), "confirm").State.Paused {
		t.Fatal("the confirmed pause is not in the state")
	}
}
