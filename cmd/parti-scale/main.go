// Command parti-scale measures parti at scale on a three-server JetStream
// cluster (embedded, on loopback, in this process; every group's stream at
// three replicas), with the members spread over a few worker processes (this
// same binary, started again: each opens ONE NATS connection and runs many
// members on it, as a real deployment's process would). It prints one
// figure a line, "NAME VALUE UNIT", with the load average, as it goes, so
// a run cut short still leaves its figures; a step that did not finish
// within its deadline prints a "# STOPPED" line saying which and why, and
// the larger sizes of that profile and partition count are skipped.
//
//	make bench-scale                           # the whole sweep (long)
//	parti-scale --members 50 --partitions 10000 --profiles fast --parts big
//	parti-scale --parts rss                    # one member holding 100,000 partitions
//	parti-scale --parts groups --groups 10,100
//
// The parts: "big" (one group stepped through the member and partition
// counts: cold start, a steady window (CPU, RSS, the servers' message rate
// split into the members' heartbeats, their other messages — judging and
// log — and the servers' traffic among themselves), a stream-leader change
// under the fleet, crash of a member and of the leader, scale-up by one and
// by 10 %, rolling restart, the log growth of the scale-ups and the restart
// per 1,000 membership changes, and at the end the whole log's records and
// bytes per event type, per decision and per declaration), "rss" (a
// dedicated one-member process holding --rss-partitions), "groups" (many
// idle groups of three members, then a crash in each of up to 10 of them:
// each failover ÷ expiry).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if os.Getenv(roleEnv) == "burner" {
		burn(ctx)
		return
	}
	if os.Getenv(roleEnv) == "worker" {
		if err := workerMain(ctx, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "parti-scale worker:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "parti-scale:", err)
		os.Exit(1)
	}
}

type options struct {
	members, partitions, groups []int
	profiles, parts             []string
	procs                       int
	stepTimeout, rollTimeout    time.Duration
	steady, idle                time.Duration
	rssPartitions               int
	groupPartitions             int
	groupProfile                string
	satProfiles                 []string
	satDuration                 time.Duration
	satMembers, satPartitions   int
	satBurners                  int
	satGC                       bool
	serverLog                   string
	minFreeMB                   int
	maxConsumers                int
}

var errFlag = errors.New("bad flag")

func intList(name, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.Atoi(strings.ReplaceAll(f, "_", ""))
		if err != nil || v < 1 {
			return nil, fmt.Errorf("%w: --%s: %q is not a positive count", errFlag, name, f)
		}
		out = append(out, v)
	}
	return out, nil
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("parti-scale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	members := fs.String("members", "50,100,250,500", "member counts of the big group, comma-separated")
	partitions := fs.String("partitions", "10000,100000", "partition counts of the big group")
	groups := fs.String("groups", "10,100,1000", "counts of idle three-member groups")
	profiles := fs.String("profiles", "fast,production", "profiles of the big group (fast, production, patient: production's timings five times over)")
	parts := fs.String("parts", "big,rss,groups", "what to measure: big, rss, groups, saturate (not by default: it runs --sat-duration per profile)")
	satProfiles := fs.String("sat-profiles", "subsecond,fast", "profiles of the saturation part (subsecond: heartbeat 100 ms, expiry 500 ms; fast; production)")
	fs.DurationVar(&o.satDuration, "sat-duration", 10*time.Minute, "how long each saturation run keeps the fleet under load")
	fs.IntVar(&o.satMembers, "sat-members", 10, "members of the saturation part's group")
	fs.IntVar(&o.satPartitions, "sat-partitions", 1000, "partitions of the saturation part's group")
	fs.IntVar(&o.satBurners, "sat-burners", 2, "processes that spin on a core each during the saturation part")
	fs.BoolVar(&o.satGC, "sat-gc", true, "also run each saturation profile once with GC pressure in the members' processes")
	fs.IntVar(&o.procs, "procs", 4, "worker processes the members are spread over (the big group uses more when a decision sent to every member of a connection would pass 32 MB)")
	fs.DurationVar(&o.stepTimeout, "step-timeout", 3*time.Minute, "deadline of each step (cold start, crash, scale-up, ...)")
	fs.DurationVar(&o.rollTimeout, "roll-timeout", 10*time.Minute, "deadline of the rolling restart")
	fs.DurationVar(&o.steady, "steady", 5*time.Second, "steady-state window after the cold start (CPU, message rate)")
	fs.DurationVar(&o.idle, "idle", 10*time.Second, "idle window of the many-groups part")
	fs.IntVar(&o.rssPartitions, "rss-partitions", 100_000, "partitions of the one-member RSS process")
	fs.IntVar(&o.groupPartitions, "group-partitions", 16, "partitions of each idle group")
	fs.StringVar(&o.groupProfile, "group-profile", "production", "profile of the idle groups")
	fs.IntVar(&o.minFreeMB, "min-free", 4096, "MB of MemAvailable to keep: a size that would leave less is not started, and one that gets there is stopped")
	fs.IntVar(&o.maxConsumers, "max-consumers", 0, "the servers' default_max_consumers per stream: 0 keeps nats-server's default (1,000), -1 lifts it")
	fs.StringVar(&o.serverLog, "server-log", "", "append the servers' warnings and errors to this file (default: discarded)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var err error
	if o.members, err = intList("members", *members); err != nil {
		return o, err
	}
	if o.partitions, err = intList("partitions", *partitions); err != nil {
		return o, err
	}
	if o.groups, err = intList("groups", *groups); err != nil {
		return o, err
	}
	for _, p := range strings.Split(*profiles, ",") {
		if _, ok := groupConfig(p, "x"); !ok || p == "subsecond" {
			return o, fmt.Errorf("%w: --profiles: %q is not fast, production or patient", errFlag, p)
		}
		o.profiles = append(o.profiles, p)
	}
	if o.groupProfile != "fast" && o.groupProfile != "production" {
		return o, fmt.Errorf("%w: --group-profile: %q is neither fast nor production", errFlag, o.groupProfile)
	}
	for _, p := range strings.Split(*satProfiles, ",") {
		if _, ok := groupConfig(p, "x"); !ok || p == "patient" {
			return o, fmt.Errorf("%w: --sat-profiles: %q is not subsecond, fast or production", errFlag, p)
		}
		o.satProfiles = append(o.satProfiles, p)
	}
	if o.satDuration <= 0 || o.satMembers < 2 || o.satPartitions < 1 || o.satBurners < 0 {
		return o, fmt.Errorf("%w: --sat-duration must be > 0, --sat-members ≥ 2, --sat-partitions ≥ 1, --sat-burners ≥ 0", errFlag)
	}
	for _, p := range strings.Split(*parts, ",") {
		if p != "big" && p != "rss" && p != "groups" && p != "saturate" {
			return o, fmt.Errorf("%w: --parts: %q is not big, rss, groups or saturate", errFlag, p)
		}
		o.parts = append(o.parts, p)
	}
	switch {
	case o.procs < 1:
		return o, fmt.Errorf("%w: --procs must be ≥ 1, got %d", errFlag, o.procs)
	case o.stepTimeout <= 0 || o.rollTimeout <= 0:
		return o, fmt.Errorf("%w: --step-timeout and --roll-timeout must be > 0", errFlag)
	case o.steady < 0 || o.idle <= 0:
		return o, fmt.Errorf("%w: --steady must be ≥ 0 and --idle > 0", errFlag)
	case o.maxConsumers < -1:
		return o, fmt.Errorf("%w: --max-consumers must be ≥ -1, got %d", errFlag, o.maxConsumers)
	case o.minFreeMB < 0:
		return o, fmt.Errorf("%w: --min-free must be ≥ 0, got %d", errFlag, o.minFreeMB)
	case o.rssPartitions < 1 || o.groupPartitions < 3:
		return o, fmt.Errorf("%w: --rss-partitions must be ≥ 1 and --group-partitions ≥ 3", errFlag)
	}
	slices.Sort(o.members)
	slices.Sort(o.partitions)
	slices.Sort(o.groups)
	return o, nil
}

type driver struct {
	o      options
	out    io.Writer
	stderr io.Writer
	cl     *cluster
	js     jetstream.JetStream

	memberRSS map[int]float64 // partitions → the largest per-member RSS measured (MB)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "parti-scale")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logw := io.Discard
	if o.serverLog != "" {
		f, err := os.OpenFile(o.serverLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		logw = f
	}
	t0 := time.Now()
	cl, err := startCluster(dir, logw, o.maxConsumers)
	if err != nil {
		return err
	}
	defer cl.shutdown()
	nc, err := nats.Connect(cl.urls(), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	d := &driver{o: o, out: stdout, stderr: stderr, cl: cl, js: js, memberRSS: map[int]float64{}}
	fmt.Fprintf(stdout, "# parti-scale: three embedded servers (R3, default_max_consumers %d), %d worker processes, GOMAXPROCS %d, %d CPUs\n", o.maxConsumers, o.procs, runtime.GOMAXPROCS(0), runtime.NumCPU())
	d.fig("loadavg_start", loadAvg(), "load")
	d.fig("cluster_start_ms", ms(time.Since(t0)), "ms")
	for _, part := range o.parts {
		switch part {
		case "big":
			d.bigSweep(ctx)
		case "rss":
			if err := d.rssOne(ctx); err != nil {
				d.stopped("rss", "run", err)
			}
		case "groups":
			d.groupSweep(ctx)
		case "saturate":
			d.saturateSweep(ctx)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	d.fig("loadavg_end", loadAvg(), "load")
	return nil
}

func (d *driver) fig(name string, v float64, unit string) {
	fmt.Fprintf(d.out, "%s %s %s\n", name, fmtNum(v), unit)
}

func (d *driver) stopped(prefix, step string, err error) {
	fmt.Fprintf(d.out, "# STOPPED %s at %s: %v (load %s)\n", prefix, step, err, fmtNum(loadAvg()))
	d.fig(prefix+"_stopped_at_"+step, 1, "step")
}

func fmtNum(v float64) string {
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// loadAvg returns the one-minute load average (-1 where unknown).
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// selfMemMB returns this process's RSS after a GC (the servers' memory: they
// run here) and its Go heap in use, in MB.
func selfMemMB() (rss, heap float64) {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	r, _ := procMemKB(os.Getpid())
	return float64(r) / 1024, float64(m.HeapInuse) / (1 << 20)
}
