package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the harness's worker process (the
// harness starts os.Executable() again with PARTI_SCALE_ROLE=worker).
func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "worker" {
		if err := workerMain(context.Background(), os.Stdin, os.Stdout); err != nil {
			os.Stderr.WriteString("worker: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The smoke run: three members over two worker processes and 60 partitions
// on the three-server cluster go through every step of a size, and every
// figure the report promises is printed.
func TestSmallSizeRunsEveryStep(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	var errw syncBuffer // the worker processes' stderr copiers write at once
	err := run(ctx, []string{"--parts", "big", "--profiles", "fast", "--members", "3", "--partitions", "60",
		"--procs", "2", "--steady", "0s", "--step-timeout", "60s"}, &out, &errw)
	if err != nil {
		t.Fatalf("run: %v\nstderr: %s", err, errw.String())
	}
	figs := map[string]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && !strings.HasPrefix(line, "#") {
			figs[f[0]] = f[1]
		}
	}
	p := "scale_fast_p60_m3_"
	for _, name := range []string{"cold_start_ms", "crash_reowned_ms", "crash_over_expiry", "leader_crash_reowned_ms",
		"leader_crash_over_expiry", "scaleup_one_moved_over_min", "scaleup_10pct_moved_over_min",
		"rolling_wall_ms", "lease_lost_revocations", "false_expiries"} {
		if _, ok := figs[p+name]; !ok {
			t.Errorf("no figure %s%s in:\n%s", p, name, out.String())
		}
	}
	if figs[p+"completed"] != "1" {
		t.Errorf("the size did not complete:\n%s", out.String())
	}
	// The three live members (three joined, two crashed, one added by each
	// scale-up) rejoin with their IDs: none of them moves a partition.
	if figs[p+"rolling_restarted"] != "3" || figs[p+"rolling_moved"] != "0" {
		t.Errorf("rolling restart: restarted %s, moved %s; want 3, 0", figs[p+"rolling_restarted"], figs[p+"rolling_moved"])
	}
	if _, ok := figs["loadavg_end"]; !ok {
		t.Errorf("no load average printed")
	}
}

// Bad flags are refused naming the flag.
func TestBadFlagsNameTheFlag(t *testing.T) {
	for args, want := range map[string]string{
		"--members 0":           "--members",
		"--partitions x":        "--partitions",
		"--profiles slow":       "--profiles",
		"--parts everything":    "--parts",
		"--procs 0":             "--procs",
		"--group-profile turbo": "--group-profile",
		"--min-free -1":         "--min-free",
		"--rss-partitions 0":    "--rss-partitions",
		"--step-timeout 0s --x": "flag provided but not defined",
	} {
		var errw bytes.Buffer
		_, err := parseOptions(strings.Fields(args), &errw)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error naming %s", args, err, want)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
