// Command parti-ctl appends operator actions to a parti group's log: drain,
// cordon, uncordon, pause, resume, move and force-expire. Each action names
// who did it (--by), is checked against the group's current state before
// it is appended, asks for confirmation on a terminal (--yes for scripts),
// prints the record it appended, and exits non-zero with the reason when
// the group refused it.
//
//	parti-ctl drain worker-3 --server nats://127.0.0.1:4222 --group orders --note "kernel upgrade"
//	parti-ctl move tenant-42 worker-1 --group orders --yes
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/parti-io/parti/cmd/internal/cli"
	"github.com/parti-io/parti/cmd/internal/natsctx"
	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/projection"
	"github.com/parti-io/parti/replay"
)

// Exit codes.
const (
	exitOK      = 0 // appended and applied by the group
	exitRefused = 1 // refused: by the check before appending, by the operator at the prompt, or by the group's fold
	exitUsage   = 2 // bad usage, a connection or a read/write error
)

const usage = `parti-ctl appends an operator action to a parti group's log.

Usage:
  parti-ctl <action> [flags] [arguments]

Actions:
  drain <member>             move every partition off the member; it stays live
  cordon <member>            give the member no new partitions; it keeps its own
  uncordon <member>          undo cordon and drain
  pause                      stop rebalancing (crashed members' partitions still move)
  resume                     resume rebalancing
  move <partition> <member>  move one partition to a member
  force-expire <member>[/<inc>]
                             expire the member's incarnation (default: its current one):
                             a verdict now, the removal once its lease can no longer be valid

Flags (every action):
  --server URL     NATS server URLs, comma-separated (default: the context's, $NATS_URL, nats://127.0.0.1:4222)
  --context NAME   connect as the nats CLI context NAME says (every setting; flags win)
  --creds FILE, --nkey FILE, --tls-cert FILE, --tls-key FILE, --tls-ca FILE
  --group ID       the group (required)
  --by NAME        who does it, kept on the log (default: $USER@hostname)
  --note TEXT      why, kept on the log
  --yes            do not ask for confirmation (required when stdin is not a terminal)
  --timeout D      how long to wait for the server at each step (default 10s)

Permissions: read the group's stream PARTI_<group> (an ordered consumer on
parti.<group>.log: $JS.API.CONSUMER.CREATE.PARTI_<group>, $JS.API.STREAM.INFO.PARTI_<group>)
and publish to parti.<group>.log.

Exit status: 0 the group applied the action, 1 refused (with the reason),
2 bad usage or a connection error.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

type options struct {
	server, context, creds, nkey, tlsCert, tlsKey, tlsCA string
	group, by, note                                      string
	yes                                                  bool
	timeout                                              time.Duration
}

// actions maps an action to its positional arguments.
var actions = map[string][]string{
	events.OpDrain:       {"member"},
	events.OpCordon:      {"member"},
	events.OpUncordon:    {"member"},
	events.OpPause:       nil,
	events.OpResume:      nil,
	events.OpMove:        {"partition", "member"},
	events.OpForceExpire: {"member"},
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	want, ok := actions[name]
	if !ok {
		fmt.Fprintf(stderr, "parti-ctl: unknown action %q\nRun 'parti-ctl --help' for the actions.\n", name)
		return exitUsage
	}
	o := &options{}
	fs := flag.NewFlagSet("parti-ctl "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.server, "server", "", "")
	fs.StringVar(&o.context, "context", "", "")
	fs.StringVar(&o.creds, "creds", "", "")
	fs.StringVar(&o.nkey, "nkey", "", "")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "")
	fs.StringVar(&o.tlsKey, "tls-key", "", "")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "")
	fs.StringVar(&o.group, "group", "", "")
	fs.StringVar(&o.by, "by", "", "")
	fs.StringVar(&o.note, "note", "", "")
	fs.BoolVar(&o.yes, "yes", false, "")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "")
	pos, err := cli.ParseArgs(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	if err == nil && len(pos) != len(want) {
		err = fmt.Errorf("%s takes %d argument(s): %s", name, len(want), strings.Join(want, " "))
	}
	if err == nil && o.group == "" {
		err = errors.New("--group is required")
	}
	if err == nil {
		err = events.ValidID(o.group)
	}
	if err != nil {
		fmt.Fprintf(stderr, "parti-ctl %s: %v\nRun 'parti-ctl --help' for usage.\n", name, err)
		return exitUsage
	}
	if o.by == "" {
		o.by = whoAmI()
	}
	a := events.OperatorAction{Action: name, By: o.by, Note: o.note}
	switch name {
	case events.OpMove:
		a.Partition, a.Target = pos[0], pos[1]
	case events.OpDrain, events.OpCordon, events.OpUncordon:
		a.Member = pos[0]
	case events.OpForceExpire:
		// member or member/incarnation
		a.Member = pos[0]
		if id, inc, ok := strings.Cut(pos[0], "/"); ok {
			n, err := strconv.ParseUint(inc, 10, 64)
			if err != nil || n == 0 {
				fmt.Fprintf(stderr, "parti-ctl %s: %q: want MEMBER or MEMBER/INCARNATION\n", name, pos[0])
				return exitUsage
			}
			a.Member, a.Incarnation = id, n
		}
	}
	return act(ctx, o, a, stdin, stdout, stderr)
}

// act checks a against the group's state, asks, appends it and reports
// what the group's fold did with it.
func act(ctx context.Context, o *options, a events.OperatorAction, stdin io.Reader, stdout, stderr io.Writer) int {
	fail := func(code int, format string, args ...any) int {
		fmt.Fprintf(stderr, "parti-ctl %s: %s\n", a.Action, fmt.Sprintf(format, args...))
		return code
	}
	cctx, cancel := context.WithTimeout(ctx, o.timeout)
	co := replay.ConnectOptions{
		Server: o.server, Creds: o.creds, NKey: o.nkey,
		TLSCert: o.tlsCert, TLSKey: o.tlsKey, TLSCA: o.tlsCA, Timeout: o.timeout,
	}
	err := natsctx.Apply(&co, o.context)
	var conn *replay.Conn
	if err == nil {
		conn, err = replay.Connect(cctx, co)
	}
	cancel()
	if err != nil {
		return fail(exitUsage, "%s", strings.TrimPrefix(err.Error(), "replay: "))
	}
	defer conn.Close()
	for _, w := range conn.Warnings {
		fmt.Fprintf(stderr, "parti-ctl %s: warning: %s\n", a.Action, w)
	}
	cctx, cancel = context.WithTimeout(ctx, o.timeout)
	defer cancel()
	src, err := conn.Source(cctx, o.group)
	if err != nil {
		return fail(exitUsage, "%s", strings.TrimPrefix(err.Error(), "replay: "))
	}
	st, err := replay.StateAt(cctx, src, replay.Point{})
	if err != nil {
		return fail(exitUsage, "read the group's state: %s", strings.TrimPrefix(err.Error(), "replay: "))
	}
	if a.Action == events.OpForceExpire && a.Incarnation == 0 {
		// The incarnation the state shows now: a force-expire never hits
		// a newer one than the operator saw.
		if m := st.State.Members[a.Member]; m != nil {
			a.Incarnation = m.Incarnation
		}
	}
	ev, err := decider.Operator(st.State, a)
	if err != nil {
		return fail(exitRefused, "refused before appending: %v", err)
	}
	leader := st.Leader
	if leader == "" {
		leader = "none"
	}
	fmt.Fprintf(stdout, "group %s at seq %d (phase %s, leader %s): %s\n", o.group, st.At.Seq, st.Phase, leader, describe(ev))
	if !o.yes {
		if !isTerminal(stdin) {
			return fail(exitUsage, "stdin is not a terminal: pass --yes to act without confirmation")
		}
		fmt.Fprint(stdout, "append it? [y/N] ")
		line, _ := bufio.NewReader(stdin).ReadString('\n')
		if ans := strings.ToLower(strings.TrimSpace(line)); ans != "y" && ans != "yes" {
			return fail(exitRefused, "not confirmed: nothing appended")
		}
	}
	app := projection.NewAppender(conn.JetStream(), src.Subjects())
	seq, err := app.Append(cctx, ev)
	if err != nil {
		return fail(exitUsage, "append: %v", err)
	}
	out, err := outcomeAt(cctx, src, seq)
	if err != nil {
		return fail(exitUsage, "appended at seq %d, but reading it back failed: %v", seq, err)
	}
	fmt.Fprintf(stdout, "appended seq %d: operator-action %s\n", seq, fields(ev))
	if out.Kind != decider.Applied {
		return fail(exitRefused, "the group %s it at seq %d: %s", out.Kind, seq, out.Reason)
	}
	fmt.Fprintf(stdout, "the group applied it\n")
	return exitOK
}

// outcomeAt folds the log up to seq and returns what the fold did with the
// record at seq.
func outcomeAt(ctx context.Context, src replay.Source, seq uint64) (decider.Outcome, error) {
	s := decider.New()
	var out decider.Outcome
	found := false
	err := src.Scan(ctx, replay.ScanOptions{LogOnly: true, SkipHeaders: true}, func(r *events.Record) error {
		o := decider.Apply(s, *r)
		if r.Seq == seq {
			out, found = o, true
			return replay.ErrStop
		}
		return nil
	})
	if err == nil && !found {
		err = fmt.Errorf("no log record at seq %d", seq)
	}
	return out, err
}

func describe(a *events.OperatorAction) string {
	switch a.Action {
	case events.OpDrain:
		return fmt.Sprintf("drain %s: move every partition off it", a.Member)
	case events.OpCordon:
		return fmt.Sprintf("cordon %s: no new partitions for it", a.Member)
	case events.OpUncordon:
		return fmt.Sprintf("uncordon %s", a.Member)
	case events.OpPause:
		return "pause rebalancing"
	case events.OpResume:
		return "resume rebalancing"
	case events.OpMove:
		return fmt.Sprintf("move %s to %s", a.Partition, a.Target)
	case events.OpForceExpire:
		return fmt.Sprintf("force-expire %s: its partitions move once its lease can no longer be valid", a.Member)
	}
	return a.Action
}

// fields prints the action's fields as tail does: key=value.
func fields(a *events.OperatorAction) string {
	var b strings.Builder
	kv := func(k, v string) {
		if v == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if strings.ContainsAny(v, " \t\"") {
			v = fmt.Sprintf("%q", v)
		}
		fmt.Fprintf(&b, "%s=%s", k, v)
	}
	kv("action", a.Action)
	if a.Incarnation != 0 {
		kv("member", replay.MemberRef(a.Member, a.Incarnation))
	} else {
		kv("member", a.Member)
	}
	kv("partition", a.Partition)
	kv("target", a.Target)
	kv("by", a.By)
	kv("note", a.Note)
	return b.String()
}

// whoAmI names the operator: $USER (or the account name) @ the host name.
func whoAmI() string {
	name := os.Getenv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	if name == "" {
		name = "unknown"
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		name += "@" + h
	}
	return name
}

// isTerminal reports whether r is a terminal (a character device). A
// variable, so that a test can answer for a terminal it cannot have.
var isTerminal = func(r io.Reader) bool { return cli.IsTerminal(r) }
