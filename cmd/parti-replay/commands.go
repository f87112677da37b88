package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/liveness"
	"github.com/parti-io/parti/replay"
)

func init() {
	commands = []*command{stateCmd, explainCmd, diffCmd, auditCmd, whatifCmd, tailCmd, exportCmd, migrateCmd}
}

var stateCmd = &command{
	name:    "state",
	summary: "parti-replay state: the group's state at a sequence or a time (default: the end).",
	details: `
Folds the group's log, as every member does, up to the point asked for, and
prints the state: phase, leader, members with their load, the partition set
and each partition's owner, fencing token and pending move (listed when there
are at most 50 partitions, or with --partitions), and the fold's counters.

The state at sequence N folds every log record up to N. The state at time T is
the state after the last log record whose server time is at or before T.

On a live stream, the state at the end also lists each live member's last
heartbeat and its age, flags those older than --expiry, and says so when no
heartbeat has landed for longer than that (the stream may not be accepting
writes: the log alone would still look healthy).`,
	examples: []string{
		"parti-replay state --server nats://localhost:4222 --group orders",
		"parti-replay state --file orders.jsonl --seq 1200",
		"parti-replay state --file orders.jsonl --time 2026-01-02T15:04:05Z --json",
	},
	stream: true,
	flags: func(fs *flag.FlagSet, o *options) {
		fs.Uint64Var(&o.seq, "seq", 0, "the state after the log record at or before sequence `N`")
		fs.StringVar(&o.at, "time", "", "the state after the last log record at or before `T` (RFC 3339)")
		fs.BoolVar(&o.partitions, "partitions", false, "list every partition's owner even when there are many")
		fs.DurationVar(&o.expiry, "expiry", liveness.Production().Expiry, "on a live stream at its end: flag heartbeats older than `D` (the group's expiry)")
	},
	do: func(ctx context.Context, e *env) int {
		pt, err := statePoint(e.o)
		if err != nil {
			return usageError(e.stderr, e.name, err)
		}
		r, err := replay.StateAt(ctx, e.src, pt)
		if err != nil {
			return e.fail(err)
		}
		// On a live stream at its end, the members' last heartbeats: the
		// log alone looks healthy while the stream refuses writes.
		var hb *hbReport
		if e.conn != nil && pt.IsEnd() {
			hctx, cancel := context.WithTimeout(ctx, e.o.timeout)
			hb, err = heartbeatAges(hctx, e.conn.JetStream(), e.src.Subjects(), r.State, time.Now(), e.o.expiry)
			cancel()
			if err != nil {
				return e.fail(fmt.Errorf("read the heartbeats: %w", err))
			}
		}
		if e.o.json {
			return e.writeJSON(struct {
				*replay.StateReport
				Heartbeats *hbReport `json:"heartbeats,omitempty"`
			}{r, hb})
		}
		if err := r.WriteText(e.stdout, e.o.partitions); err != nil {
			return e.fail(err)
		}
		if hb != nil {
			hb.writeText(e.stdout)
		}
		return exitOK
	},
}

func statePoint(o *options) (replay.Point, error) {
	switch {
	case o.seq != 0 && o.at != "":
		return replay.Point{}, errors.New("give --seq or --time, not both")
	case o.at != "":
		t, err := time.Parse(time.RFC3339Nano, o.at)
		if err != nil {
			return replay.Point{}, fmt.Errorf("--time %q: want an RFC 3339 time like 2026-01-02T15:04:05Z", o.at)
		}
		return replay.AtTime(t), nil
	case o.seq != 0:
		return replay.AtSeq(o.seq), nil
	}
	return replay.Point{}, nil
}

var explainCmd = &command{
	name:    "explain",
	args:    "<partition>",
	nargs:   1,
	summary: "parti-replay explain: every ownership change of one partition, and why.",
	details: `
Lists, in log order, every record that changed the partition's owner, fencing
token or pending move, with its sequence, server time and event type, and why:
the decision (generation, reason, leader, the log position it was based on),
the release (and the token given up), the removal (reason, verdict, judge), the
restart takeover, the cancelled move. Decisions and releases that named the
partition but were rejected or ignored are listed too.

The partition is given by its ID (as declared). Put "--" before an ID that
starts with a dash.`,
	examples: []string{
		"parti-replay explain --file orders.jsonl tenant-42",
		"parti-replay explain --group orders --json tenant-42",
	},
	stream: true,
	do: func(ctx context.Context, e *env) int {
		ex, err := replay.Explain(ctx, e.src, e.pos[0])
		if err != nil {
			return e.fail(err)
		}
		if e.o.json {
			return e.writeJSON(ex)
		}
		if err := ex.WriteText(e.stdout); err != nil {
			return e.fail(err)
		}
		return exitOK
	},
}

var diffCmd = &command{
	name:    "diff",
	args:    "<A> <B>",
	nargs:   2,
	summary: "parti-replay diff: what changed between two points of the history.",
	details: `
Compares the state at A with the state at B: phase, leader, generation, the
members that joined, left or changed status, the partitions added or dropped,
and every partition whose owner changed (summed by owner, then one by one).

A and B are sequence numbers (as for state --seq) or RFC 3339 times (as for
state --time); A must not come after B.`,
	examples: []string{
		"parti-replay diff --file orders.jsonl 120 480",
		"parti-replay diff --group orders 2026-01-02T15:00:00Z 2026-01-02T16:00:00Z",
	},
	stream: true,
	do: func(ctx context.Context, e *env) int {
		a, err := replay.ParsePoint(e.pos[0])
		if err != nil {
			return usageError(e.stderr, e.name, fmt.Errorf("A: %v", err))
		}
		b, err := replay.ParsePoint(e.pos[1])
		if err != nil {
			return usageError(e.stderr, e.name, fmt.Errorf("B: %v", err))
		}
		d, err := replay.Diff(ctx, e.src, a, b)
		if err != nil {
			return e.fail(err)
		}
		if e.o.json {
			return e.writeJSON(d)
		}
		if err := d.WriteText(e.stdout); err != nil {
			return e.fail(err)
		}
		return exitOK
	},
}

var auditCmd = &command{
	name:    "audit",
	summary: "parti-replay audit: check the whole history against the invariants.",
	details: `
Folds the whole history and checks, in log order:
  - the decider's invariants after every log record (incrementally; the whole
    state in full as --check-every says);
  - no double ownership: a partition passes to a new owner only after its
    previous owner released it or was removed, and only to the move's target;
  - each partition's fencing tokens strictly increase;
  - every accepted decision was computed on the log position just before it;
  - no partition stays unowned longer than --max-unowned (server timestamps;
    reported as approximate where they step backwards);
  - stream sequences increase, and removals name the member their verdict is on;
  - a genesis (the start of a group migrated from an older one, see migrate)
    applies; with --from-group or --from-file, the old generation's log is
    refolded up to the genesis's sequence and must hash to the state the
    genesis carries, and must not go on after it.
Every record a correct member (or operator tool) never writes is a violation,
with its reason: a decision the fold rejects (a correct leader's decision is
fenced on the log it was computed from); garbage, other types or an unknown
protocol version on a heartbeat subject or the log; a heartbeat stored after a
verdict on its subject; a removal citing a log record or a heartbeat as its
verdict, "expired" with no verdict, "forced" with no force-expire of that
incarnation; a verdict naming another incarnation than its subject's; and
each record the fold ignores for one of these reasons:
  ` + strings.Join(replay.ViolationReasons(), "\n  ") + `
Benign repeats and races a correct process can lose are information, counted
but not violations: a second removal of an incarnation, and records the fold
ignores for one of these reasons:
  ` + strings.Join(replay.BenignReasons(), "\n  ") + `
A valid version-set above this build's protocol version ends the audit there,
with a warning: what follows is of a version this build cannot read.

Exit status: 0 clean, 1 violations found, 2 usage, connection or read error.`,
	examples: []string{
		"parti-replay audit --file orders.jsonl",
		"parti-replay audit --context prod --group orders --max-unowned 1m --json",
		"parti-replay audit --group orders-g2 --from-group orders",
	},
	stream: true,
	flags: func(fs *flag.FlagSet, o *options) {
		fs.DurationVar(&o.maxUnowned, "max-unowned", 30*time.Second, "the longest a partition may stay unowned (0 disables the check)")
		fs.DurationVar(&o.expiry, "max-heartbeat-gap", liveness.Production().Expiry, "report every span longer than `D` without any heartbeat while the group had live members (the group's expiry; 0 disables)")
		fs.IntVar(&o.checkEvery, "check-every", 0, "check the whole state every `N` log records (1: after every record; 0: 1 up to 64 partitions, else 16 × partitions)")
		fs.StringVar(&o.fromGroup, "from-group", "", "check the genesis against the previous generation, group `ID` on the same server")
		fs.StringVar(&o.fromFile, "from-file", "", "check the genesis against the previous generation's export `FILE`")
	},
	do: func(ctx context.Context, e *env) int {
		if e.o.maxUnowned < 0 || e.o.checkEvery < 0 {
			return usageError(e.stderr, e.name, errors.New("--max-unowned and --check-every must not be negative"))
		}
		prev, code := previousSource(ctx, e)
		if code != exitOK {
			return code
		}
		r, err := replay.Audit(ctx, e.src, replay.AuditOptions{MaxUnowned: e.o.maxUnowned, CheckEvery: e.o.checkEvery, Previous: prev, MaxHeartbeatGap: e.o.expiry})
		if err != nil {
			return e.fail(err)
		}
		code = exitOK
		if e.o.json {
			code = e.writeJSON(r)
		} else if err := r.WriteText(e.stdout); err != nil {
			code = e.fail(err)
		}
		if code == exitOK && !r.Clean {
			return exitViolations
		}
		return code
	},
}

var whatifCmd = &command{
	name:    "whatif",
	summary: "parti-replay whatif: refold the membership history under another strategy or window.",
	details: `
Replays the recorded membership history — claims, leaves, closes, grace ends,
removals, declarations, operator actions — into a second fold that uses the
given strategy (or window), lets its leader decide wherever a recorded
decision was accepted (and wherever a what-if window closes), and has every
source release at once. Prints the partitions moved and placed and the
balance (most and fewest partitions per eligible member) side by side with
what happened, per decision point and in total.

With --fail-zone Z, the what-if then loses zone Z at the end of the history:
every live member labelled zone=Z (or the label Z itself, if it holds a '=')
is removed as if expired, the what-if's leader rebalances, and the report adds
the partitions moved against the minimum (those the zone held), the load per
capacity unit before and after, and the partitions no live member may own
(with the labels their constraint requires).

Strategies: ` + strings.Join(replay.Strategies(), ", ") + `.`,
	examples: []string{
		"parti-replay whatif --file orders.jsonl --strategy consistent-hash",
		"parti-replay whatif --file orders.jsonl --window 0 --json",
		"parti-replay whatif --file orders.jsonl --fail-zone a",
		"parti-replay whatif --file orders.jsonl --strategy placement --fail-zone region=eu",
	},
	stream: true,
	flags: func(fs *flag.FlagSet, o *options) {
		fs.StringVar(&o.strategy, "strategy", "", "the strategy `NAME` to refold with (default: as declared)")
		fs.StringVar(&o.window, "window", "", "replace the recorded join windows by windows of `D` server time (0: rebalance on every join)")
		fs.StringVar(&o.failZone, "fail-zone", "", "then lose zone `Z` (members labelled zone=Z, or the label Z) and report moves, balance and unplaceable partitions")
	},
	do: func(ctx context.Context, e *env) int {
		opts := replay.WhatIfOptions{Strategy: e.o.strategy, FailZone: e.o.failZone}
		if e.o.window != "" {
			d, err := time.ParseDuration(e.o.window)
			if err != nil || d < 0 {
				return usageError(e.stderr, e.name, fmt.Errorf("--window %q: want a duration like 1s or 0", e.o.window))
			}
			opts.Window = &d
		}
		if opts.Strategy == "" && opts.Window == nil && opts.FailZone == "" {
			return usageError(e.stderr, e.name, errors.New("nothing to change: give --strategy, --window or --fail-zone"))
		}
		if opts.FailZone != "" && strings.ContainsAny(opts.FailZone, " ,") {
			return usageError(e.stderr, e.name, fmt.Errorf("--fail-zone %q: want one zone, like a, or one label, like region=eu", opts.FailZone))
		}
		if opts.Strategy != "" && !contains(replay.Strategies(), opts.Strategy) {
			return usageError(e.stderr, e.name, fmt.Errorf("--strategy %q: want one of %s", opts.Strategy, strings.Join(replay.Strategies(), ", ")))
		}
		r, err := replay.WhatIf(ctx, e.src, opts)
		if err != nil {
			return e.fail(err)
		}
		if e.o.json {
			return e.writeJSON(r)
		}
		if err := r.WriteText(e.stdout); err != nil {
			return e.fail(err)
		}
		return exitOK
	},
}

// wrap breaks s into lines of at most width columns, each indented.
func wrap(s string, width int, indent string) string {
	var lines []string
	line := indent
	for _, w := range strings.Fields(s) {
		if len(line) > len(indent) && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += w
	}
	return strings.Join(append(lines, line), "\n")
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

var tailCmd = &command{
	name:    "tail",
	summary: "parti-replay tail: follow the live stream, one readable line per event.",
	details: `
Prints each record of the group's stream on one line: sequence, server time,
subject kind (log, hb, snap), event type and its key fields; for log records,
what the fold did when it was not applied ([rejected: ...], [ignored: ...]).
Heartbeats and verdicts are included unless filtered out. On a stream it
shows what is appended from now on (or from --from) and runs until
interrupted (Ctrl-C); on a file it prints the file. When the group's stream
does not exist yet, tail says so once and waits for it (--no-wait fails
instead). --timeout bounds each wait on the server, not the quiet between
events.

Filters combine: --member shows what concerns one member (its heartbeats, the
verdicts on it, the log events naming it), --partition the log events naming
one partition, --type the given event types, comma-separated, among:
` + wrap(strings.Join(replay.TypeNames(), ", "), 76, "  "),
	examples: []string{
		"parti-replay tail --server nats://localhost:4222 --group orders",
		"parti-replay tail --group orders --member worker-3 --type heartbeat,expiry-verdict",
		"parti-replay tail --file orders.jsonl --partition tenant-42 --json",
	},
	stream: true,
	flags: func(fs *flag.FlagSet, o *options) {
		fs.StringVar(&o.member, "member", "", "show only records about member `ID`")
		fs.StringVar(&o.partition, "partition", "", "show only log events about partition `ID`")
		fs.StringVar(&o.types, "type", "", "show only these event `TYPES` (comma-separated)")
		fs.Uint64Var(&o.from, "from", 0, "start at sequence `N` (default: new records on a stream, everything in a file)")
		fs.BoolVar(&o.noWait, "no-wait", false, "fail when the group's stream does not exist, instead of waiting for it")
	},
	do: func(ctx context.Context, e *env) int {
		opts := replay.TailOptions{Member: e.o.member, Partition: e.o.partition, From: e.o.from}
		if e.o.types != "" {
			opts.Types = []string{e.o.types}
		}
		_, live := e.src.(replay.Live)
		opts.Follow = live
		if live {
			opts.Ready = func(from uint64) {
				fmt.Fprintf(e.stderr, "following %s from seq %d (Ctrl-C stops)\n", e.src, from)
			}
		}
		w := bufio.NewWriter(e.stdout)
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		err := replay.Tail(ctx, e.src, opts, func(te *replay.TailEvent) error {
			if e.o.json {
				if err := enc.Encode(te); err != nil {
					return err
				}
			} else if _, err := fmt.Fprintln(w, te.Text()); err != nil {
				return err
			}
			return w.Flush() // one event, one line, now
		})
		if ferr := w.Flush(); err == nil {
			err = ferr
		}
		if err != nil && !(live && errors.Is(err, context.Canceled) && ctx.Err() != nil) {
			return e.fail(err)
		}
		return exitOK
	},
}

var exportCmd = &command{
	name:    "export",
	summary: "parti-replay export: write the history as newline-delimited JSON.",
	details: `
Writes every record of the history — log, heartbeats, verdicts and snapshot
chunks, up to the stream's last sequence when the export starts — one JSON
object per line:

  {"seq":N,"time":"<RFC 3339, UTC>","subject":"...","headers":{...},"body":<event>}

The body is embedded as is when it is valid JSON (every well-formed event),
otherwise written as "body_b64". That is everything the fold reads: the file
replays exactly like the stream (--file), and exporting it again gives the
same bytes. import loads a file into a new stream; exporting that stream
gives the file back (original sequences, times and headers).

The first line names the group and the last one counts the records:

  {"parti_export":1,"group":"orders"}
  {"parti_export_end":1,"group":"orders","records":N}

so every command reading the file (--file, import) refuses one that was cut
or spliced. A file without them (an older build's export) is read with a
warning.

With --out the file appears only once complete.`,
	examples: []string{
		"parti-replay export --server nats://localhost:4222 --group orders --out orders.jsonl",
		"parti-replay export --embedded /var/lib/nats --group orders --log-only > orders-log.jsonl",
	},
	stream: true,
	flags: func(fs *flag.FlagSet, o *options) {
		fs.StringVar(&o.out, "out", "", "write to `FILE` (default: standard output)")
		fs.BoolVar(&o.logOnly, "log-only", false, "export only the log subject (no heartbeats, verdicts or snapshots)")
	},
	do: func(ctx context.Context, e *env) int {
		out, commit, abort, err := outputFile(e)
		if err != nil {
			return e.fail(err)
		}
		w := replay.NewWriter(out)
		err = w.Begin(e.src.Subjects().Group)
		if err == nil {
			err = e.src.Scan(ctx, replay.ScanOptions{LogOnly: e.o.logOnly}, func(r *events.Record) error {
				restoreImported(r) // a stream loaded by import: its original records
				return w.Write(r)
			})
		}
		if err == nil {
			err = w.End()
		}
		if err == nil {
			err = commit()
		}
		if err != nil {
			abort()
			return e.fail(err)
		}
		if e.o.out != "" {
			fmt.Fprintf(e.stderr, "exported %d records to %s\n", w.Count(), e.o.out)
		}
		return exitOK
	},
}

// outputFile returns where export writes: stdout, or a temporary file next
// to --out that commit renames into place.
func outputFile(e *env) (w interface{ Write([]byte) (int, error) }, commit func() error, abort func(), err error) {
	if e.o.out == "" {
		return e.stdout, func() error { return nil }, func() {}, nil
	}
	f, err := os.CreateTemp(filepath.Dir(e.o.out), "."+filepath.Base(e.o.out)+".tmp-")
	if err != nil {
		return nil, nil, nil, err
	}
	commit = func() error {
		if err := f.Close(); err != nil {
			return err
		}
		return os.Rename(f.Name(), e.o.out)
	}
	abort = func() {
		f.Close()
		os.Remove(f.Name())
	}
	return f, commit, abort, nil
}
