// Command parti-bench is the end-to-end benchmark: it runs fleets of
// in-process members on an embedded JetStream server and prints one figure a
// line, "NAME VALUE UNIT", with NAME_p90 and NAME_max beside every timing
// (each timing is the median of --runs runs).
//
//	go run ./cmd/parti-bench            # 20 runs, 10 members, 1,024 partitions, fast profile
//	go run ./cmd/parti-bench --runs 5
//	go run ./cmd/parti-bench --live-history FILE   # replay from a live stream vs its raw read rate
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
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/embedded"
	"github.com/parti-io/parti/projection"
	"github.com/parti-io/parti/replay"
	"github.com/parti-io/parti/replay/replaytest"
	"github.com/parti-io/parti/strategy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "parti-bench:", err)
		os.Exit(1)
	}
}

type options struct {
	runs, members, partitions int
	historyRecords            int
	liveFile, liveGroup       string
	verbose                   bool
	placementOnly             bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("parti-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.runs, "runs", 20, "runs per timing (the median is printed, with p90 and max)")
	fs.IntVar(&o.members, "members", 10, "members per fleet")
	fs.IntVar(&o.partitions, "partitions", 1024, "partitions")
	fs.BoolVar(&o.verbose, "v", false, "print each run's figures on stderr")
	fs.BoolVar(&o.placementOnly, "placement-only", false, "only measure the placement figures (zone loss, strategy cost)")
	fs.IntVar(&o.historyRecords, "history", 300_000, "records of the generated history (150 members × 10,000 partitions) for the fold and replay rates")
	fs.StringVar(&o.liveFile, "live-history", "", "only measure replay from a live stream: load this export file into a stream and audit it")
	fs.StringVar(&o.liveGroup, "live-group", "bench", "the group of --live-history")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.liveFile != "" {
		return liveReplay(ctx, o.liveFile, o.liveGroup, stdout)
	}
	if o.runs < 1 || o.members < 2 || o.partitions < 1 {
		return errors.New("--runs ≥ 1, --members ≥ 2 and --partitions ≥ 1 are required")
	}
	dir, err := os.MkdirTemp("", "parti-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	local, err := embedded.StartLocal(dir)
	if err != nil {
		return err
	}
	defer local.Close()
	js := local.JS
	b := &bench{o: o, js: js, stderr: stderr, series: map[string][]float64{}}
	if o.placementOnly {
		return b.placementOnly(ctx, stdout)
	}
	for r := range o.runs {
		if _, err := b.oneRun(ctx, r); err != nil {
			return fmt.Errorf("run %d: %w", r, err)
		}
	}
	for r := range o.runs { // placement (zones.go)
		if err := b.zoneRun(ctx, r); err != nil {
			return fmt.Errorf("zone run %d: %w", r, err)
		}
	}
	if err := b.placementCost(); err != nil {
		return err
	}
	rss, err := b.rssPerMember(ctx)
	if err != nil {
		return err
	}
	expiry := parti.Fast("x").Timings.Expiry
	out := func(name string, v float64, unit string) { fmt.Fprintf(stdout, "%s %s %s\n", name, fmtNum(v), unit) }
	timing := func(name, series, unit string, scale float64) {
		v := b.series[series]
		med, p90, mx := quantiles(v)
		out(name, med*scale, unit)
		out(name+"_p90", p90*scale, unit)
		out(name+"_max", mx*scale, unit)
	}
	timing("cold_start_ms", "cold", "ms", 1)
	timing("failover_ms", "failover", "ms", 1)
	timing("failover_over_expiry", "failover", "ratio", 1/float64(expiry.Milliseconds()))
	timing("leader_failover_ms", "leaderfail", "ms", 1)
	timing("leader_failover_over_expiry", "leaderfail", "ratio", 1/float64(expiry.Milliseconds()))
	e2d := b.series["e2d"]
	out("expiry_to_decision_ms", p99(e2d), "ms(p99)")
	out("expiry_to_decision_ms_p50", median(e2d), "ms")
	timing("leave_unowned_ms", "leave", "ms", 1)
	timing("scaleup_moved_over_min", "scaleup", "ratio", 1)
	timing("rolling_restart_moved", "rolling", "partitions", 1)
	timing("zone_loss_moved_over_min", "zoneloss", "ratio", 1)
	timing("zone_loss_balance", "zonebalance", "ratio", 1)
	timing("placement_strategy_500x100000_ms", "placement_empty", "ms", 1)
	timing("placement_zone_loss_500x100000_ms", "placement_zoneloss", "ms", 1)
	hist, err := generateHistory(o.historyRecords)
	if err != nil {
		return err
	}
	out("history_records", float64(len(hist)), "records")
	out("fold_events_per_s", foldRate(hist), "events/s")
	rate, err := replayFileRate(ctx, hist)
	if err != nil {
		return err
	}
	out("replay_file_events_per_s", rate, "events/s")
	out("rss_mb_per_member", rss, "MB")
	return nil
}

func fmtNum(v float64) string {
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

func quantiles(v []float64) (med, p90, mx float64) {
	if len(v) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return median(s), s[min(len(s)-1, int(float64(len(s))*0.9))], s[len(s)-1]
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func p99(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*0.99))]
}

// tracker records, from the members' own handlers, who acts on what.
type tracker struct {
	mu         sync.Mutex
	holder     map[string]string
	assignedAt map[string]time.Time
	revokedAt  map[string]time.Time
	changed    chan struct{}
}

func newTracker() *tracker {
	return &tracker{holder: map[string]string{}, assignedAt: map[string]time.Time{}, revokedAt: map[string]time.Time{}, changed: make(chan struct{}, 1)}
}

func (t *tracker) handler(name string) parti.Handler {
	return parti.HandlerFuncs{
		OnAssigned: func(a parti.Assignment) {
			t.mu.Lock()
			t.holder[a.Partition] = name
			t.assignedAt[a.Partition] = time.Now()
			t.mu.Unlock()
			t.poke()
		},
		OnRevoked: func(a parti.Assignment, _ parti.RevokeReason) {
			t.mu.Lock()
			if t.holder[a.Partition] == name {
				delete(t.holder, a.Partition)
				t.revokedAt[a.Partition] = time.Now()
			}
			t.mu.Unlock()
			t.poke()
		},
	}
}

func (t *tracker) poke() {
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// wait polls cond (under the tracker's lock) until it holds.
func (t *tracker) wait(ctx context.Context, timeout time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		t.mu.Lock()
		ok := cond()
		t.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.changed:
		case <-tick.C:
		}
	}
}

type bench struct {
	o      options
	js     jetstream.JetStream
	stderr io.Writer
	series map[string][]float64
}

func (b *bench) add(name string, v float64) {
	b.series[name] = append(b.series[name], v)
	if b.o.verbose {
		fmt.Fprintf(b.stderr, "%s=%s ", name, fmtNum(v))
	}
}

type fleet struct {
	b       *bench
	group   string
	parts   []string
	tr      *tracker
	members map[string]*parti.Member
}

func (f *fleet) join(ctx context.Context, id string, expected int) (*parti.Member, error) {
	cfg := parti.Fast(f.group)
	cfg.ID = id
	cfg.Partitions = f.parts
	cfg.ExpectedMembers = expected
	cfg.Handler = f.tr.handler(id)
	m, err := parti.Join(ctx, f.b.js, cfg)
	if err != nil {
		return nil, err
	}
	f.members[id] = m
	return m, nil
}

// settled: every partition held by exactly one member (per the handlers)
// and the leader has nothing left to decide.
func (f *fleet) settled() bool {
	if len(f.tr.holder) != len(f.parts) {
		return false
	}
	for _, m := range f.members {
		if !m.IsLeader() {
			continue
		}
		return m.GroupSettled(len(f.members))
	}
	return false
}

func (f *fleet) owners() map[string]string {
	out := make(map[string]string, len(f.tr.holder))
	for p, h := range f.tr.holder {
		out[p] = h
	}
	return out
}

func (b *bench) oneRun(ctx context.Context, r int) ([]events.Record, error) {
	f := &fleet{b: b, group: fmt.Sprintf("bench-%d-%d", os.Getpid(), r), tr: newTracker(), members: map[string]*parti.Member{}}
	for i := range b.o.partitions {
		f.parts = append(f.parts, fmt.Sprintf("p-%05d", i))
	}
	defer func() {
		for _, m := range f.members {
			m.Stop()
		}
	}()
	const timeout = 60 * time.Second
	if b.o.verbose {
		fmt.Fprintf(b.stderr, "run %d: ", r)
		defer fmt.Fprintln(b.stderr)
	}

	// Cold start: first join to every partition held by one member.
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var joinErr error
	for i := range b.o.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := parti.Join(ctx, b.js, f.cfg(fmt.Sprintf("w%02d", i), b.o.members))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				joinErr = err
				return
			}
			f.members[m.ID()] = m
		}()
	}
	wg.Wait()
	if joinErr != nil {
		return nil, joinErr
	}
	if err := f.tr.wait(ctx, timeout, func() bool { return len(f.tr.holder) == len(f.parts) }); err != nil {
		return nil, fmt.Errorf("cold start: %w", err)
	}
	b.add("cold", ms(time.Since(start)))
	if err := f.tr.wait(ctx, timeout, f.settled); err != nil {
		return nil, fmt.Errorf("cold start settle: %w", err)
	}

	// Scale-up by one: moves against the minimum.
	before := locked(f, f.owners)
	if _, err := f.join(ctx, fmt.Sprintf("w%02d", b.o.members), 0); err != nil {
		return nil, err
	}
	if err := f.tr.wait(ctx, timeout, f.settled); err != nil {
		return nil, fmt.Errorf("scale-up: %w", err)
	}
	after := locked(f, f.owners)
	b.add("scaleup", float64(movedCount(before, after))/float64(minimumMoves(before, f)))

	// Crash of a non-leader, then of the leader.
	for _, which := range []string{"failover", "leaderfail"} {
		var victim string
		for _, id := range sortedIDs(f.members) {
			if f.members[id].IsLeader() == (which == "leaderfail") {
				victim = id
				break
			}
		}
		owned := locked(f, func() []string {
			var ps []string
			for p, h := range f.tr.holder {
				if h == victim {
					ps = append(ps, p)
				}
			}
			return ps
		})
		t0 := time.Now()
		f.members[victim].Stop()
		delete(f.members, victim)
		f.tr.mu.Lock()
		for _, p := range owned {
			delete(f.tr.holder, p)
		}
		f.tr.mu.Unlock()
		if err := f.tr.wait(ctx, timeout, func() bool {
			for _, p := range owned {
				if _, ok := f.tr.holder[p]; !ok {
					return false
				}
			}
			return true
		}); err != nil {
			return nil, fmt.Errorf("%s: %w", which, err)
		}
		b.add(which, ms(time.Since(t0)))
		if err := f.tr.wait(ctx, timeout, f.settled); err != nil {
			return nil, fmt.Errorf("%s settle: %w", which, err)
		}
	}

	// Graceful leave: the longest time one of the leaver's partitions had no
	// owner (its revoke to the next owner's assign).
	leaver := sortedIDs(f.members)[1]
	owned := locked(f, func() []string {
		var ps []string
		for p, h := range f.tr.holder {
			if h == leaver {
				ps = append(ps, p)
			}
		}
		return ps
	})
	if err := f.members[leaver].Leave(ctx); err != nil {
		return nil, err
	}
	delete(f.members, leaver)
	if err := f.tr.wait(ctx, timeout, f.settled); err != nil {
		return nil, fmt.Errorf("leave: %w", err)
	}
	worst := time.Duration(0)
	f.tr.mu.Lock()
	for _, p := range owned {
		if gap := f.tr.assignedAt[p].Sub(f.tr.revokedAt[p]); gap > worst {
			worst = gap
		}
	}
	f.tr.mu.Unlock()
	b.add("leave", ms(worst))

	// Rolling restart: every member closes and rejoins with its ID.
	before = locked(f, f.owners)
	for _, id := range sortedIDs(f.members) {
		if err := f.members[id].Close(ctx); err != nil {
			return nil, err
		}
		delete(f.members, id)
		if _, err := f.join(ctx, id, 0); err != nil {
			return nil, err
		}
		if err := f.tr.wait(ctx, timeout, f.settled); err != nil {
			return nil, fmt.Errorf("rolling restart: %w", err)
		}
	}
	b.add("rolling", float64(movedCount(before, locked(f, f.owners))))

	recs, err := readLog(ctx, b.js, f.group)
	if err != nil {
		return nil, err
	}
	for _, d := range expiryToDecision(recs) {
		b.add("e2d", ms(d))
	}
	return recs, nil
}

func (f *fleet) cfg(id string, expected int) parti.Config {
	cfg := parti.Fast(f.group)
	cfg.ID = id
	cfg.Partitions = f.parts
	cfg.ExpectedMembers = expected
	cfg.Handler = f.tr.handler(id)
	return cfg
}

func locked[T any](f *fleet, fn func() T) T {
	f.tr.mu.Lock()
	defer f.tr.mu.Unlock()
	return fn()
}

func sortedIDs(m map[string]*parti.Member) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func movedCount(a, b map[string]string) int {
	n := 0
	for p, o := range a {
		if b[p] != o {
			n++
		}
	}
	return n
}

func minimumMoves(before map[string]string, f *fleet) int {
	in := strategy.Input{Members: sortedIDs(f.members), Partitions: f.parts, Previous: make([]string, len(f.parts))}
	for i, p := range f.parts {
		in.Previous[i] = before[p]
	}
	return max(1, strategy.MinimumMoves(in))
}

// readLog reads every record of the group's log subject.
func readLog(ctx context.Context, js jetstream.JetStream, group string) ([]events.Record, error) {
	subj, _ := events.NewSubjects(group)
	st, err := js.Stream(ctx, projection.StreamName(group))
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj.Log()}})
	if err != nil {
		return nil, err
	}
	var recs []events.Record
	last := info.State.LastSeq
	for {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil, err
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			meta, err := msg.Metadata()
			if err != nil {
				return nil, err
			}
			recs = append(recs, events.NewRecord(meta.Sequence.Stream, meta.Timestamp, msg.Subject(), msg.Headers(), msg.Data()))
			if meta.Sequence.Stream >= last || meta.NumPending == 0 {
				return recs, nil
			}
		}
		if n == 0 {
			return recs, nil
		}
	}
}

// expiryToDecision returns, for each removal, the server time to the next
// accepted decision.
func expiryToDecision(recs []events.Record) []time.Duration {
	var out []time.Duration
	for i, r := range recs {
		if _, ok := r.Event.(*events.MemberRemoved); !ok {
			continue
		}
		for _, n := range recs[i+1:] {
			if d, ok := n.Event.(*events.AssignmentDecided); ok && d.Part == 0 {
				out = append(out, n.Time.Sub(r.Time))
				break
			}
		}
	}
	return out
}

// generateHistory generates a churn history (joins, leaves, crashes with
// verdicts, restarts, decisions, releases, heartbeats) by driving the decider.
func generateHistory(n int) ([]events.Record, error) {
	rec := replaytest.NewRecorder(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Millisecond)
	_, err := replaytest.Generate(replaytest.GenerateConfig{Group: "hist", Members: 150, Partitions: 10_000, Records: n, Seed: 1}, rec)
	return rec.Records, err
}

// foldRate decodes and folds the log records of recs (what a member does)
// and returns records per second.
func foldRate(recs []events.Record) float64 {
	subj, _ := events.NewSubjects("hist")
	start := time.Now()
	s := decider.New()
	n := 0
	for _, r := range recs {
		if r.Subject != subj.Log() {
			continue
		}
		decider.Apply(s, events.NewRecord(r.Seq, r.Time, r.Subject, r.Header, r.Body))
		n++
	}
	return float64(n) / time.Since(start).Seconds()
}

// replayFileRate exports recs to a file and audits it with the replay
// package: records read per second, end to end.
func replayFileRate(ctx context.Context, recs []events.Record) (float64, error) {
	f, err := os.CreateTemp("", "parti-bench-*.jsonl")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	if err := replay.Export(f, recs); err != nil {
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	start := time.Now()
	src, err := replay.OpenFile(f.Name(), "hist")
	if err != nil {
		return 0, err
	}
	rep, err := replay.Audit(ctx, src, replay.AuditOptions{})
	if err != nil {
		return 0, err
	}
	if !rep.Clean {
		return 0, fmt.Errorf("the generated history does not audit clean: %d violations", rep.ViolationCount)
	}
	return float64(len(recs)) / time.Since(start).Seconds(), nil
}

// rssPerMember measures the resident memory of 10 members minus 1, over 9.
func (b *bench) rssPerMember(ctx context.Context) (float64, error) {
	measure := func(n int) (float64, []*parti.Member, error) {
		f := &fleet{b: b, group: fmt.Sprintf("rss-%d-%d", os.Getpid(), n), tr: newTracker(), members: map[string]*parti.Member{}}
		for i := range b.o.partitions {
			f.parts = append(f.parts, fmt.Sprintf("p-%05d", i))
		}
		var ms []*parti.Member
		for i := range n {
			m, err := f.join(ctx, fmt.Sprintf("w%02d", i), n)
			if err != nil {
				return 0, ms, err
			}
			ms = append(ms, m)
		}
		if err := f.tr.wait(ctx, time.Minute, f.settled); err != nil {
			return 0, ms, err
		}
		runtime.GC()
		debug.FreeOSMemory()
		return rssMB(), ms, nil
	}
	stopAll := func(ms []*parti.Member) {
		for _, m := range ms {
			m.Stop()
		}
	}
	one, ms1, err := measure(1)
	stopAll(ms1)
	if err != nil {
		return 0, err
	}
	ten, ms10, err := measure(10)
	stopAll(ms10)
	if err != nil {
		return 0, err
	}
	return (ten - one) / 9, nil
}

func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
