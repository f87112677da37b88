// Command bench-consumer measures the consumer helper (consumer.Join)
// side by side with a plain JetStream pull consumer and with pcgroups'
// elastic consumer groups (github.com/synadia-io/orbit.go/pcgroups), on one
// embedded server with file storage, and the member's catch-up fold
// against a raw read of the log. It prints one `NAME VALUE UNIT` line per
// figure: medians of RUNS runs, with _p90 and _max, then summary ratios.
//
// It is a module of its own so that pcgroups never enters the library's
// go.mod. Run it with `make bench-consumer` (RUNS=1 for a quick pass).
//
// Environment: RUNS (default 3), MSGS (backlog per partition count,
// default 200,000), CATCHUP (log records of the catch-up history, default
// 1,000,000), TAIL_RATE (msg/s, default 20,000), TAIL_SECS (default 5),
// ONLY=drain, tail or catchup for one part (ONLY=raw: the raw layout
// comparison), PARTS and MEMBERS (comma-separated counts) to narrow the
// drains, SKIP_PCGROUPS=1, SKIP_RAW=1 (no bare consumers; one of tens
// of thousands of filters takes the server long to create), TRACE=1 (where the tail's slow messages
// lost their time: publish → stored → handler, stalls over time, by
// member; and the process's CPU per message, steadier than rates on a
// shared machine), TAIL_PROFILE=prefix (CPU and mutex profiles of each
// system's tail: prefix.<system>[.mutex]), OURS_COMMIT=duration (the
// helper's CommitInterval), CPUPROFILE=file (the server runs in-process:
// its work is in the profile too).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"

	"github.com/parti-io/parti/internal/embedded"
)

func envInt(k string, d int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return d
}

// envList reads a comma-separated list of counts (nil when unset).
func envList(k string) []int {
	var out []int
	for _, f := range strings.Split(os.Getenv(k), ",") {
		if v, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && v > 0 {
			out = append(out, v)
		}
	}
	return out
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench-consumer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, stdout, stderr io.Writer) error {
	dir, err := os.MkdirTemp("", "bench-consumer")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	l, err := embedded.StartLocal(dir)
	if err != nil {
		return err
	}
	defer l.Close()
	if os.Getenv("ONLY") == "raw" {
		return rawLayouts(ctx, l.Server.ClientURL(), envInt("MSGS", 200_000), stdout)
	}
	b := &bench{
		url: l.Server.ClientURL(), js: l.JS, stderr: stderr, series: map[string][]float64{},
		runs: envInt("RUNS", 3), msgs: envInt("MSGS", 200_000),
		tailRate: envInt("TAIL_RATE", 20_000), tailSecs: envInt("TAIL_SECS", 5),
		pcgroups: os.Getenv("SKIP_PCGROUPS") == "", trace: os.Getenv("TRACE") != "",
		raw: os.Getenv("SKIP_RAW") == "",
	}
	if v := envList("PARTS"); v != nil {
		partitionCounts = v
	}
	if v := envList("MEMBERS"); v != nil {
		memberCounts = v
	}
	if f := os.Getenv("CPUPROFILE"); f != "" {
		w, err := os.Create(f)
		if err != nil {
			return err
		}
		defer w.Close()
		if err := pprof.StartCPUProfile(w); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	only := os.Getenv("ONLY")
	fmt.Fprintf(stdout, "loadavg_start %s load\n", loadAvg())
	if only == "" || only == "drain" {
		if err := b.drains(ctx); err != nil {
			return err
		}
	}
	if only == "" || only == "tail" {
		if err := b.tails(ctx); err != nil {
			return err
		}
	}
	if only == "" || only == "catchup" {
		if err := b.catchup(ctx, envInt("CATCHUP", 1_000_000)); err != nil {
			return err
		}
	}
	b.print(stdout)
	fmt.Fprintf(stdout, "loadavg_end %s load\n", loadAvg())
	return nil
}

// loadAvg returns the one-minute load average ("?" where unknown).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
