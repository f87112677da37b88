package main

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the harness's worker process (the
// harness starts os.Executable() again with PARTI_SCALE_ROLE=worker).
func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "burner" {
		burn(context.Background()) // killed by the driver
		os.Exit(0)
	}
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
	out := runScale(t, "--parts", "big", "--profiles", "fast", "--members", "3", "--partitions", "60",
		"--procs", "2", "--steady", "1s", "--step-timeout", "30s")
	figs := figures(out)
	p := "scale_fast_p60_m3_"
	for _, name := range []string{"cold_start_ms", "crash_reowned_ms", "crash_over_expiry", "leader_crash_reowned_ms",
		"leader_crash_over_expiry", "scaleup_one_moved_over_min", "scaleup_10pct_moved_over_min",
		"rolling_wall_ms", "lease_lost_revocations", "false_expiries",
		// The log: per event type, per decision and declaration.
		"log_records", "log_bytes", "log_assignment_decided_records", "log_assignment_decided_bytes",
		"log_partitions_declared_records", "log_member_claimed_records",
		"log_decisions", "log_decision_parts_mean", "log_decision_parts_max", "log_decision_bytes_mean", "log_decision_bytes_max",
		"log_declarations", "log_declaration_parts_mean", "log_declaration_bytes_mean",
		// Log growth per 1,000 membership changes.
		"scaleup_one_log_bytes_per_1000_changes", "scaleup_10pct_log_bytes_per_1000_changes",
		"rolling_log_bytes", "rolling_log_records", "rolling_membership_changes",
		"rolling_log_bytes_per_1000_changes", "rolling_log_records_per_1000_changes",
		// The steady window's message rates.
		"steady_heartbeats_per_s", "steady_heartbeats_per_s_per_member", "steady_judging_msgs_per_s",
		"steady_judging_msgs_per_s_per_member", "steady_deliveries_to_members_per_s",
		"steady_servers_in_msgs_not_from_members_per_s", "steady_verdicts",
		// The stream-leader change.
		"stream_leader_change_new_leader_ms", "stream_leader_change_members_expired",
		"stream_leader_change_removals_logged", "stream_leader_change_lease_lost_revocations",
		"stream_leader_change_leases_lost", "steady_leases_lost",
		"stream_leader_change_settled_after"} {
		if _, ok := figs[p+name]; !ok {
			t.Errorf("no figure %s%s in:\n%s", p, name, out)
		}
	}
	if figs[p+"completed"] != "1" {
		t.Errorf("the size did not complete:\n%s", out)
	}
	// The three live members (three joined, two crashed, one added by each
	// scale-up) rejoin with their IDs: none of them moves a partition.
	if figs[p+"rolling_restarted"] != "3" || figs[p+"rolling_moved"] != "0" {
		t.Errorf("rolling restart: restarted %s, moved %s; want 3, 0", figs[p+"rolling_restarted"], figs[p+"rolling_moved"])
	}
	if _, ok := figs["loadavg_end"]; !ok {
		t.Errorf("no load average printed")
	}
	// Values the run fixes: a cold start makes a decision and declares the
	// partitions; each restarted member closes and claims its ID again (at
	// least 2 changes each, and no one leaves the log untouched); the
	// members heartbeat; nobody is expired by the stream-leader change and
	// the group settles after it.
	for name, want := range map[string]func(float64) bool{
		"log_decisions":                        func(v float64) bool { return v >= 1 },
		"log_declarations":                     func(v float64) bool { return v >= 1 },
		"log_decision_bytes_mean":              func(v float64) bool { return v > 0 },
		"rolling_membership_changes":           func(v float64) bool { return v >= 6 },
		"rolling_log_bytes_per_1000_changes":   func(v float64) bool { return v > 0 },
		"scaleup_one_membership_changes":       func(v float64) bool { return v >= 1 },
		"steady_heartbeats_per_s":              func(v float64) bool { return v > 0 },
		"stream_leader_change_members_expired": func(v float64) bool { return v == 0 },
		"stream_leader_change_removals_logged": func(v float64) bool { return v == 0 },
		"stream_leader_change_settled_after":   func(v float64) bool { return v == 1 },
	} {
		v, err := strconv.ParseFloat(figs[p+name], 64)
		if err != nil || !want(v) {
			t.Errorf("%s%s = %q: not what the run must give", p, name, figs[p+name])
		}
	}
}

// Two idle groups of three members: a member of each crashes, and each
// failover ÷ expiry is reported.
func TestFewGroupsFailOver(t *testing.T) {
	out := runScale(t, "--parts", "groups", "--groups", "2", "--group-profile", "fast", "--group-partitions", "6",
		"--procs", "2", "--idle", "1s", "--step-timeout", "60s")
	figs := figures(out)
	if strings.Contains(out, "STOPPED") {
		t.Fatalf("the run stopped:\n%s", out)
	}
	if figs["groups_2_failover_groups"] != "2" || figs["groups_2_failover_leader_crashes"] != "1" {
		t.Errorf("failover: %s groups sampled, %s leader crashes; want 2, 1:\n%s",
			figs["groups_2_failover_groups"], figs["groups_2_failover_leader_crashes"], out)
	}
	for _, name := range []string{"groups_2_failover_over_expiry_median", "groups_2_failover_over_expiry_max"} {
		if v, err := strconv.ParseFloat(figs[name], 64); err != nil || v <= 0 {
			t.Errorf("%s = %q, want a positive ratio:\n%s", name, figs[name], out)
		}
	}
	if _, ok := figs["groups_2_failover_within_1.2_expiry"]; !ok {
		t.Errorf("no groups_2_failover_within_1.2_expiry:\n%s", out)
	}
}

// The rss part measures one member both ways: a handler that ignores the
// assignments' contexts and one that takes every Done channel, which costs
// more.
func TestRSSPartMeasuresBothHandlers(t *testing.T) {
	out := runScale(t, "--parts", "rss", "--rss-partitions", "50000", "--step-timeout", "60s")
	figs := figures(out)
	for _, name := range []string{"rss_one_member_p50000", "rss_one_member_p50000_watching"} {
		for _, fig := range []string{"_rss_mb", "_heap_inuse_mb"} {
			v, err := strconv.ParseFloat(figs[name+fig], 64)
			if err != nil || v <= 0 {
				t.Fatalf("%s = %q, want a positive size:\n%s", name+fig, figs[name+fig], out)
			}
		}
	}
	// The watching handler took every assignment's Done channel, the other
	// none (the heap's margin, 4.8 MB of Done channels, was too close to a
	// GC's noise to test; how many contexts the member holds at the end,
	// _contexts_made, counts only the current tenures: a lease lost and
	// regained just before it makes fresh ones, looked at a moment later).
	if v, err := strconv.Atoi(figs["rss_one_member_p50000_watching_contexts_watched"]); err != nil || v < 50000 {
		t.Errorf("the watching run took %q Done channels, want at least 50000:\n%s", figs["rss_one_member_p50000_watching_contexts_watched"], out)
	}
	if made := figs["rss_one_member_p50000_contexts_made"]; made != "0" {
		t.Errorf("the ignoring run's member made %q assignment contexts, want 0:\n%s", made, out)
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

// runScale runs parti-scale with args (within two minutes) and returns
// what it printed; it fails the test, with the workers' stderr, if the run
// returns an error.
func runScale(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	var errw syncBuffer // the worker processes' stderr copiers write at once
	if err := run(ctx, args, &out, &errw); err != nil {
		t.Fatalf("run: %v\nstdout: %s\nstderr: %s", err, out.String(), errw.String())
	}
	return out.String()
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

// The saturation part, briefly: a subsecond-profile group runs under one
// burner process, then a member crashes; every figure is printed and the
// crash is taken over.
func TestSaturationRunReports(t *testing.T) {
	out := runScale(t, "--parts", "saturate", "--sat-profiles", "subsecond", "--sat-members", "3", "--sat-partitions", "30",
		"--sat-duration", "2s", "--sat-burners", "1", "--sat-gc=false", "--procs", "2", "--step-timeout", "60s")
	if strings.Contains(out, "STOPPED") {
		t.Fatalf("the run stopped:\n%s", out)
	}
	figs := figures(out)
	p := "saturate_subsecond_m3_p30_"
	for _, name := range []string{"false_expiries", "leases_lost", "lease_lost_revocations", "heartbeats_failed", "verdicts", "loadavg_mean"} {
		if _, err := strconv.ParseFloat(figs[p+name], 64); err != nil {
			t.Errorf("%s%s = %q:\n%s", p, name, figs[p+name], out)
		}
	}
	if v, err := strconv.ParseFloat(figs[p+"crash_over_expiry"], 64); err != nil || v <= 0 {
		t.Errorf("crash_over_expiry = %q, want a positive ratio:\n%s", figs[p+"crash_over_expiry"], out)
	}
}

// figures maps each NAME of the report's "NAME VALUE UNIT" lines to VALUE.
func figures(out string) map[string]string {
	figs := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 3 && !strings.HasPrefix(line, "#") {
			figs[f[0]] = f[1]
		}
	}
	return figs
}

// The big group spreads its members over more processes when a decision
// sent to every member on one connection would pass connBurstBytes.
func TestBigProcsBoundsTheBurstPerConnection(t *testing.T) {
	for _, tc := range []struct{ procs, M, P, want int }{
		{4, 500, 10_000, 4},
		{4, 100, 100_000, 4},
		{4, 250, 100_000, 10},
		{4, 500, 100_000, 19},
		{4, 2, 100_000, 2},
		{1, 1, 1_000_000, 1},
	} {
		if got := bigProcs(tc.procs, tc.M, tc.P); got != tc.want {
			t.Errorf("bigProcs(%d, %d, %d) = %d, want %d", tc.procs, tc.M, tc.P, got, tc.want)
		}
		if n := bigProcs(tc.procs, tc.M, tc.P); (tc.M+n-1)/n*decisionBytesPerPartition*tc.P > connBurstBytes && tc.M > n {
			t.Errorf("bigProcs(%d, %d, %d) = %d leaves %d members a connection", tc.procs, tc.M, tc.P, n, (tc.M+n-1)/n)
		}
	}
}

// Every profile the harness runs is a valid configuration, and patient is
// production's timings five times over.
func TestProfilesAreValid(t *testing.T) {
	for _, p := range []string{"fast", "production", "patient", "subsecond"} {
		c, ok := groupConfig(p, "g")
		if err := c.Validate(); !ok || err != nil {
			t.Errorf("%s: known %v, %v", p, ok, err)
		}
	}
	pc, _ := groupConfig("patient", "g")
	qc, _ := groupConfig("production", "g")
	if p, q := pc.Timings, qc.Timings; p.Expiry != 5*q.Expiry || p.Lease != 5*q.Lease {
		t.Errorf("patient timings %+v, production %+v", p, q)
	}
}
