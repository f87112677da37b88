package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/replay"
	"github.com/parti-io/parti/replay/replaytest"
)

// update rewrites the recorded histories and the golden outputs:
//
//	go test ./cmd/parti-replay -run 'Golden|Histories' -update
//
// Review the diff.
var update = flag.Bool("update", false, "rewrite testdata/*.jsonl and testdata/golden/*")

const (
	historyFile    = "testdata/history.jsonl"
	violationsFile = "testdata/violations.jsonl"
	// closedFile is the scenario with every live member closed for a
	// restart, and g2File the history of group orders-g2 migrated from it.
	closedFile = "testdata/history-closed.jsonl"
	g2File     = "testdata/history-g2.jsonl"
	// zonesFile is replaytest.ZoneScenario: a zoned group under the
	// placement strategy.
	zonesFile = "testdata/history-zones.jsonl"
)

// histories builds the recorded histories: replaytest.Scenario (a clean
// group life) and replaytest.ViolationScenario (a history the audit must
// fail), as export files.
func histories(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for path, build := range map[string]func(*replaytest.Builder, *replaytest.Recorder){
		historyFile:    func(b *replaytest.Builder, _ *replaytest.Recorder) { replaytest.Scenario(b) },
		violationsFile: replaytest.ViolationScenario,
		zonesFile:      func(b *replaytest.Builder, _ *replaytest.Recorder) { replaytest.ZoneScenario(b) },
	} {
		rec := replaytest.NewRecorder(replaytest.Base, replaytest.Step)
		b, err := replaytest.NewBuilder("orders", rec)
		if err != nil {
			t.Fatal(err)
		}
		build(b, rec)
		if b.Err() != nil {
			t.Fatal(b.Err())
		}
		var buf bytes.Buffer
		if err := replay.Export(&buf, rec.Records); err != nil {
			t.Fatal(err)
		}
		out[path] = buf.Bytes()
	}
	rec := replaytest.NewRecorder(replaytest.Base, replaytest.Step)
	b, err := replaytest.NewBuilder("orders", rec)
	if err != nil {
		t.Fatal(err)
	}
	replaytest.Scenario(b)
	for _, m := range b.State.LiveMembers() {
		b.CloseForRestart(m.ID)
	}
	last := rec.Records[len(rec.Records)-1]
	nrec := replaytest.NewRecorder(last.Time.Add(time.Minute), replaytest.Step)
	nrec.SkipTo(last.Seq + 1)
	nb, err := replaytest.NewBuilder("orders-g2", nrec)
	if err != nil {
		t.Fatal(err)
	}
	nb.Genesis("orders", b.State, 1024)
	nb.Claim("worker-0")
	nb.Claim("worker-2")
	nb.Heartbeats()
	for _, e := range []error{b.Err(), nb.Err()} {
		if e != nil {
			t.Fatal(e)
		}
	}
	for path, recs := range map[string][]events.Record{closedFile: rec.Records, g2File: nrec.Records} {
		var buf bytes.Buffer
		if err := replay.Export(&buf, recs); err != nil {
			t.Fatal(err)
		}
		out[path] = buf.Bytes()
	}
	return out
}

// TestHistoriesAreUpToDate checks the recorded histories are what the
// builders make today (the decider and the scenarios are deterministic).
func TestHistoriesAreUpToDate(t *testing.T) {
	for path, want := range histories(t) {
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale (run with -update and review the diff):\n%s", path, cmp.Diff(string(got), string(want)))
		}
	}
}

// runCLI runs the program and returns stdout, stderr and the exit code.
func runCLI(ctx context.Context, args ...string) (string, string, int) {
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

// goldenCases is every subcommand, text and JSON, on the recorded
// histories, plus help and usage errors.
var goldenCases = []struct {
	name string
	args []string
	code int
}{
	{"help", []string{"--help"}, 0},
	{"help-state", []string{"state", "--help"}, 0},
	{"help-explain", []string{"explain", "-h"}, 0},
	{"help-diff", []string{"help", "diff"}, 0},
	{"help-audit", []string{"audit", "--help"}, 0},
	{"help-whatif", []string{"whatif", "--help"}, 0},
	{"help-tail", []string{"tail", "--help"}, 0},
	{"help-export", []string{"export", "--help"}, 0},
	{"help-migrate", []string{"migrate", "--help"}, 0},
	{"help-report", []string{"report", "--help"}, 0},
	{"help-serve", []string{"serve", "--help"}, 0},
	{"help-import", []string{"import", "--help"}, 0},

	{"state", []string{"state", "--file", historyFile}, 0},
	{"state-json", []string{"state", "--file", historyFile, "--json"}, 0},
	{"state-seq", []string{"state", "--file", historyFile, "--seq", "20"}, 0},
	{"state-time", []string{"state", "--time", "2026-03-01T10:00:13.6Z", "--file", historyFile}, 0},
	{"state-before-start", []string{"state", "--time", "2026-03-01T09:00:00Z", "--file", historyFile}, 0},
	{"diff-restart", []string{"diff", "--file", historyFile, "36", "39"}, 0},
	{"explain", []string{"explain", "--file", historyFile, "p-00"}, 0},
	{"explain-json", []string{"explain", "p-00", "--file", historyFile, "--json"}, 0},
	{"diff", []string{"diff", "--file", historyFile, "20", "end"}, 0},
	{"diff-json", []string{"diff", "--file", historyFile, "--json", "20", "2026-03-01T10:00:18Z"}, 0},
	{"audit", []string{"audit", "--file", historyFile}, 1}, // the scenario holds garbage and an unfenced stale decision
	{"audit-json", []string{"audit", "--file", historyFile, "--json"}, 1},
	{"audit-violations", []string{"audit", "--file", violationsFile}, 1},
	{"audit-violations-json", []string{"audit", "--file", violationsFile, "--json"}, 1},
	{"whatif", []string{"whatif", "--file", historyFile, "--strategy", "round-robin"}, 0},
	{"whatif-json", []string{"whatif", "--file", historyFile, "--strategy", "consistent-hash", "--json"}, 0},
	{"whatif-window", []string{"whatif", "--file", historyFile, "--window", "0"}, 0},
	{"whatif-fail-zone", []string{"whatif", "--file", zonesFile, "--fail-zone", "c"}, 0},
	{"whatif-fail-zone-sticky", []string{"whatif", "--file", zonesFile, "--strategy", "sticky", "--fail-zone", "zone=a"}, 0},
	{"state-zones", []string{"state", "--file", zonesFile}, 0},
	{"tail-zones", []string{"tail", "--file", zonesFile, "--type", "member-claimed,partitions-declared"}, 0},
	{"tail", []string{"tail", "--file", historyFile}, 0},
	{"tail-json", []string{"tail", "--file", historyFile, "--json", "--type", "assignment-decided,expiry-verdict"}, 0},
	{"tail-garbage", []string{"tail", "--file", historyFile, "--type", "garbage"}, 0},
	{"tail-member", []string{"tail", "--file", historyFile, "--member", "worker-1"}, 0},
	{"tail-partition", []string{"tail", "--file", historyFile, "--partition", "p-00"}, 0},
	{"tail-genesis", []string{"tail", "--file", g2File}, 0},
	{"audit-genesis", []string{"audit", "--file", g2File, "--from-file", closedFile}, 0},
	{"audit-genesis-json", []string{"audit", "--file", g2File, "--from-file", closedFile, "--json"}, 0},
	{"audit-genesis-mismatch", []string{"audit", "--file", g2File, "--from-file", historyFile}, 1},
	{"explain-genesis", []string{"explain", "--file", g2File, "p-03"}, 0},

	{"err-no-command", nil, 2},
	{"err-unknown-command", []string{"replay"}, 2},
	{"err-unknown-flag", []string{"state", "--file", historyFile, "--sequence", "3"}, 2},
	{"err-seq-and-time", []string{"state", "--file", historyFile, "--seq", "3", "--time", "2026-03-01T10:00:00Z"}, 2},
	{"err-explain-no-partition", []string{"explain", "--file", historyFile}, 2},
	{"err-diff-bad-point", []string{"diff", "--file", historyFile, "20", "soon"}, 2},
	{"err-diff-reversed", []string{"diff", "--file", historyFile, "30", "20"}, 2},
	{"err-missing-file", []string{"audit", "--file", "testdata/missing.jsonl"}, 2},
	{"err-not-an-export", []string{"state", "--file", "main_test.go"}, 2},
	{"err-no-group", []string{"state", "--server", "nats://127.0.0.1:4222"}, 2},
	{"err-bad-url", []string{"state", "--server", "http://127.0.0.1:4222", "--group", "orders"}, 2},
	{"err-file-and-server", []string{"state", "--file", historyFile, "--server", "nats://x:4222"}, 2},
	{"err-whatif-nothing", []string{"whatif", "--file", historyFile}, 2},
	{"err-whatif-strategy", []string{"whatif", "--file", historyFile, "--strategy", "best"}, 2},
	{"err-tail-type", []string{"tail", "--file", historyFile, "--type", "hearbeat"}, 2},
	{"err-migrate-file", []string{"migrate", "--file", historyFile, "--to", "orders-g2"}, 2},
	{"err-audit-from-group-file", []string{"audit", "--file", historyFile, "--from-group", "orders"}, 2},
}

func TestGolden(t *testing.T) {
	if *update {
		os.MkdirAll(filepath.Join("testdata", "golden"), 0o755)
	}
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(t.Context(), tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			got := fmt.Sprintf("$ parti-replay %s\n%s", strings.Join(tc.args, " "), stdout)
			if stderr != "" {
				got += "--- stderr\n" + stderr
			}
			got += fmt.Sprintf("--- exit %d\n", code)
			path := filepath.Join("testdata", "golden", tc.name+".txt")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs (-want +got):\n%s", path, cmp.Diff(string(want), got))
			}
		})
	}
}

// TestExportFileIsIdentity: exporting an export file gives it back, byte
// for byte; with --out the file appears whole.
func TestExportFileIsIdentity(t *testing.T) {
	want, err := os.ReadFile(historyFile)
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCLI(t.Context(), "export", "--file", historyFile)
	if code != 0 || stdout != string(want) {
		t.Fatalf("export exit %d, stderr %q; output differs: %v", code, stderr, cmp.Diff(string(want), stdout))
	}
	out := filepath.Join(t.TempDir(), "copy.jsonl")
	_, stderr, code = runCLI(t.Context(), "export", "--file", historyFile, "--out", out)
	got, err := os.ReadFile(out)
	if code != 0 || err != nil || !bytes.Equal(got, want) {
		t.Fatalf("export --out: exit %d, %v, stderr %q", code, err, stderr)
	}
	if !strings.Contains(stderr, "exported 51 records to "+out) {
		t.Fatalf("stderr %q", stderr)
	}
}
