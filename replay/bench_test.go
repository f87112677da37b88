package replay

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/replay/replaytest"
)

// historyPath names the benchmark's history file. Empty: a file in a
// temporary directory, generated once per run and removed at the end. A
// path that does not exist is generated there and kept, so that a second
// run measures the audit alone (and its peak RSS without the generator's):
//
//	go test ./replay -run '^$' -bench AuditFile -history /tmp/parti-1m.jsonl
var historyPath = flag.String("history", "", "BenchmarkAuditFile: the 1,000,000-record history to audit (generated there if missing)")

// benchConfig is the benchmark history: 500 members, 100,000 partitions,
// at least 1,000,000 records.
var benchConfig = replaytest.GenerateConfig{Group: "bench", Members: 500, Partitions: 100_000, Records: 1_000_000, HeartbeatsPerRound: 20, Seed: 1}

var (
	benchOnce sync.Once
	benchFile string
	benchErr  error
	benchTmp  string
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if benchTmp != "" {
		os.RemoveAll(benchTmp)
	}
	os.Exit(code)
}

// generateHistory writes the benchmark history to path.
func generateHistory(path string, cfg replaytest.GenerateConfig) (replaytest.GenerateStats, error) {
	tmp := path + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		return replaytest.GenerateStats{}, err
	}
	defer os.Remove(tmp)
	defer f.Close()
	w := NewWriter(f)
	rec := replaytest.NewRecorder(replaytest.Base, time.Millisecond)
	rec.Sink = w.Write
	st, err := replaytest.Generate(cfg, rec)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Close()
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	return st, err
}

func loadBenchHistory(b *testing.B) string {
	b.Helper()
	benchOnce.Do(func() {
		path := *historyPath
		if path == "" {
			if benchTmp, benchErr = os.MkdirTemp("", "parti-replay-bench-"); benchErr != nil {
				return
			}
			path = filepath.Join(benchTmp, "history.jsonl")
		}
		benchFile = path
		if _, err := os.Stat(path); err == nil {
			return
		}
		start := time.Now()
		st, err := generateHistory(path, benchConfig)
		benchErr = err
		if err == nil {
			fmt.Fprintf(os.Stderr, "generated %s in %v: %d records, %d rounds %v, %d decisions\n",
				path, time.Since(start).Round(time.Second), st.Records, st.Rounds, st.Kinds, st.Decisions)
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchFile
}

// peakRSS returns the process's peak resident set size in MiB (VmHWM).
func peakRSS() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkAuditFile audits the 1,000,000-record history from its export
// file, and, for the breakdown, only reads it (parse and decode on every
// core) and only folds its log (what state does). It reports events/s
// (records of every subject per second), the file's MB/s and the process's
// peak RSS (which includes the generator's when the history was generated
// in this run).
func BenchmarkAuditFile(b *testing.B) {
	path := loadBenchHistory(b)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	src, err := OpenFile(path, "")
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, op func() (uint64, error)) {
		var records uint64
		for b.Loop() {
			n, err := op()
			if err != nil {
				b.Fatal(err)
			}
			records = n
		}
		perOp := b.Elapsed().Seconds() / float64(b.N)
		b.ReportMetric(float64(records)/perOp, "events/s")
		b.ReportMetric(float64(fi.Size())/perOp/1e6, "MB/s")
		b.ReportMetric(perOp, "s/op")
		b.ReportMetric(peakRSS(), "peak-RSS-MiB")
		b.ReportMetric(float64(records), "records")
	}
	b.Run("audit", func(b *testing.B) {
		run(b, func() (uint64, error) {
			rep, err := Audit(b.Context(), src, AuditOptions{MaxUnowned: 30 * time.Second})
			if err != nil {
				return 0, err
			}
			if !rep.Clean {
				return 0, fmt.Errorf("the generated history has %d violations: %+v", rep.ViolationCount, rep.Violations[:min(3, len(rep.Violations))])
			}
			return rep.Reads.Records, nil
		})
	})
	b.Run("read", func(b *testing.B) {
		run(b, func() (uint64, error) {
			var n uint64
			err := src.Scan(b.Context(), ScanOptions{SkipHeaders: true}, func(*events.Record) error { n++; return nil })
			return n, err
		})
	})
	b.Run("state", func(b *testing.B) {
		run(b, func() (uint64, error) {
			st, err := StateAt(b.Context(), src, Point{})
			if err != nil {
				return 0, err
			}
			return st.Reads.Records, nil
		})
	})
}
