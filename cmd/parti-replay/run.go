package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/parti-io/parti/cmd/internal/cli"
	"github.com/parti-io/parti/cmd/internal/natsctx"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/replay"
)

// Exit codes: scripts can trust them.
const (
	exitOK         = 0 // success; for audit: no violation
	exitViolations = 1 // audit found violations
	exitUsage      = 2 // bad usage, a connection or read error
)

const rootUsage = `parti-replay rebuilds a parti group's state from its history and explains it.
It only reads, except migrate, which writes a new group's stream (never the
old one).

Usage:
  parti-replay <command> [flags] [arguments]

Commands:
  state     the group's state at a sequence or a time (default: the end)
  explain   every ownership change of one partition, and why
  diff      what changed between two points: members, partitions, phase
  audit     check the whole history against the invariants
  whatif    refold the membership history under another strategy or window
  tail      follow the live stream, one readable line per event
  export    write the history as newline-delimited JSON (an export file)
  migrate   start a new-generation group from the group's final state
  import    load an export file into a new stream
  report    write the ownership timeline as one HTML page
  serve     show the ownership timeline of a live group in the browser

Every command reads one history:
  a live stream     --server URL (or --context NAME) and --group GROUP
  an export file    --file FILE (made by export; the group is in the file)
  a stopped store   --embedded DIR --group GROUP (a copy of DIR is served
                    by an embedded nats-server; DIR itself is never opened
                    for writing)

--context NAME connects as the nats CLI context NAME says
($XDG_CONFIG_HOME/nats/context/NAME.json, ~/.config/nats/context/NAME.json),
read with the nats CLI's own library (jsm.go's natscontext): servers, user and
password, token, creds, nkey, user JWT, TLS, inbox prefix, SOCKS proxy, and
the JetStream domain or API prefix. Flags given as well win.

Output is for people by default; --json prints JSON for scripts.

--timeout D (default 10s) is the longest any command waits on the server
without progress: connecting, a request, or the next message of a read
that knows messages are due. A read that keeps receiving is never cut
short; past D the command exits 2 saying what it was waiting for.

Exit status: 0 success (audit: clean), 1 audit found violations,
2 bad usage, a connection or a read error, or a timeout.

Examples:
  parti-replay state --server nats://localhost:4222 --group orders
  parti-replay explain --file orders.jsonl tenant-42
  parti-replay audit --context prod --group orders --max-unowned 30s
  parti-replay export --group orders --out orders.jsonl

Run 'parti-replay <command> --help' for a command's flags and an example.
`

// run is the whole program: only main exits. A panic (a bug) is reported
// in one line, not as a stack trace.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(stderr, "parti-replay: internal error: %v (please report it, with the command line)\n", p)
			code = exitUsage
		}
	}()
	if len(args) == 0 {
		fmt.Fprint(stderr, rootUsage)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if name == "help" && len(args) > 1 {
			if c := lookup(args[1]); c != nil {
				c.printHelp(stdout)
				return exitOK
			}
		}
		fmt.Fprint(stdout, rootUsage)
		return exitOK
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(stderr, "parti-replay: unknown command %q\nRun 'parti-replay --help' for the commands.\n", name)
		return exitUsage
	}
	return c.execute(ctx, args[1:], stdout, stderr)
}

// command is one subcommand.
type command struct {
	name     string
	args     string // the positional arguments' synopsis
	nargs    int    // how many positional arguments
	summary  string
	details  string
	examples []string
	// stream: the command reads a history (source flags apply).
	stream bool
	flags  func(fs *flag.FlagSet, o *options)
	do     func(ctx context.Context, e *env) int
}

// options holds every flag's value.
type options struct {
	// Source.
	server, context, creds, nkey, tlsCert, tlsKey, tlsCA string
	group, file, embedded                                string
	timeout                                              time.Duration
	json                                                 bool
	// Commands.
	seq        uint64
	at         string
	partitions bool
	maxUnowned time.Duration
	checkEvery int
	strategy   string
	window     string
	failZone   string
	member     string
	partition  string
	types      string
	from       uint64
	out        string
	logOnly    bool
	fromGroup  string
	fromFile   string
	to         string
	by         string
	note       string
	allowLive  bool
	noWait     bool
	replicas   int
	chunkBytes int
	httpAddr   string        // serve
	refresh    time.Duration // serve
	expiry     time.Duration // state
}

// env is what a command runs with.
type env struct {
	o      *options
	pos    []string
	stdout io.Writer
	stderr io.Writer
	name   string
	src    replay.Source
	conn   *replay.Conn // the connection of a stream source (nil for a file)
	term   bool         // stderr is a terminal: show progress
}

var commands []*command

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (c *command) flagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("parti-replay "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if c.flags != nil {
		c.flags(fs, o)
	}
	if c.stream {
		sourceFlags(fs, o)
		if c.name != "export" {
			fs.BoolVar(&o.json, "json", false, "print JSON instead of text")
		}
	}
	return fs
}

func sourceFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.file, "file", "", "read an export `FILE` (see export) instead of a stream")
	fs.StringVar(&o.embedded, "embedded", "", "serve a copy of the stopped nats-server store `DIR` with an embedded server and read it")
	fs.StringVar(&o.server, "server", "", "NATS server `URL`s, comma-separated (default: the context's, $NATS_URL, nats://127.0.0.1:4222)")
	fs.StringVar(&o.context, "context", "", "connect as the nats CLI context `NAME` says (every setting; flags win)")
	fs.StringVar(&o.group, "group", "", "the group's `ID` (required for a stream; a file knows its group)")
	fs.StringVar(&o.creds, "creds", "", "NATS credentials `FILE`")
	fs.StringVar(&o.nkey, "nkey", "", "NATS nkey seed `FILE`")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "TLS client certificate `FILE`")
	fs.StringVar(&o.tlsKey, "tls-key", "", "TLS client key `FILE`")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "TLS CA certificate `FILE` to trust")
	fs.DurationVar(&o.timeout, "timeout", replay.DefaultTimeout, "the longest to wait on the server without progress (connecting, a request, the next message of a read) before giving up with exit status 2")
}

func (c *command) execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o := &options{}
	fs := c.flagSet(o)
	pos, err := cli.ParseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		c.printHelp(stdout)
		return exitOK
	}
	if err == nil && len(pos) != c.nargs {
		switch {
		case c.nargs == 0:
			err = fmt.Errorf("unexpected argument %q", pos[0])
		case len(pos) < c.nargs:
			err = fmt.Errorf("missing argument: want %s", c.args)
		default:
			err = fmt.Errorf("too many arguments: want %s", c.args)
		}
	}
	if err != nil {
		return usageError(stderr, c.name, err)
	}
	e := &env{o: o, pos: pos, stdout: stdout, stderr: stderr, name: c.name, term: cli.IsTerminal(stderr)}
	if c.stream {
		src, conn, closeFn, code := openSource(ctx, e)
		if code != exitOK {
			return code
		}
		defer closeFn()
		e.src, e.conn = src, conn
	}
	return c.do(ctx, e)
}

func usageError(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "parti-replay %s: %v\nRun 'parti-replay %s --help' for usage.\n", cmd, err, cmd)
	return exitUsage
}

// fail reports an error of a running command.
func (e *env) fail(err error) int {
	if errors.Is(err, context.Canceled) {
		fmt.Fprintf(e.stderr, "parti-replay %s: interrupted\n", e.name)
		return exitUsage
	}
	if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, replay.ErrTimeout) {
		fmt.Fprintf(e.stderr, "parti-replay %s: timed out (--timeout %v): %s\n", e.name, e.o.timeout, failText(e.name, err))
		return exitUsage
	}
	fmt.Fprintf(e.stderr, "parti-replay %s: %s\n", e.name, failText(e.name, err))
	return exitUsage
}

// failText is err's message without the prefixes the command's own name
// already says ("replay: ", "replay: diff: ").
func failText(cmd string, err error) string {
	msg := strings.TrimPrefix(err.Error(), "replay: ")
	return strings.TrimPrefix(msg, cmd+": ")
}

// openSource opens the history the flags name, and returns the connection
// of a stream source.
func openSource(ctx context.Context, e *env) (replay.Source, *replay.Conn, func(), int) {
	o := e.o
	nop := func() {}
	streamFlags := o.server != "" || o.context != "" || o.creds != "" || o.nkey != "" || o.tlsCert != "" || o.tlsKey != "" || o.tlsCA != ""
	switch {
	case o.file != "" && o.embedded != "":
		return nil, nil, nop, usageError(e.stderr, e.name, errors.New("--file and --embedded exclude each other"))
	case o.file != "" && streamFlags:
		return nil, nil, nop, usageError(e.stderr, e.name, errors.New("--file reads a file: connection flags do not apply"))
	case o.embedded != "" && streamFlags:
		return nil, nil, nop, usageError(e.stderr, e.name, errors.New("--embedded serves a store copy: connection flags do not apply"))
	}
	if o.group != "" {
		if err := events.ValidID(o.group); err != nil {
			return nil, nil, nop, usageError(e.stderr, e.name, fmt.Errorf("--group: %v", err))
		}
	}
	if o.file != "" {
		src, err := replay.OpenFile(o.file, o.group)
		if err != nil {
			return nil, nil, nop, e.fail(err)
		}
		warnUnsealed(e, src)
		return wrapProgress(e, src), nil, nop, exitOK
	}
	if o.group == "" {
		return nil, nil, nop, usageError(e.stderr, e.name, errors.New("--group is required to read a stream (or give --file)"))
	}
	var (
		conn *replay.Conn
		err  error
	)
	if o.embedded != "" {
		conn, err = startEmbedded(ctx, o.embedded, o.timeout)
	} else {
		co := replay.ConnectOptions{
			Server: o.server, Creds: o.creds, NKey: o.nkey,
			TLSCert: o.tlsCert, TLSKey: o.tlsKey, TLSCA: o.tlsCA, Timeout: o.timeout,
		}
		if err = natsctx.Apply(&co, o.context); err == nil {
			conn, err = replay.Connect(ctx, co)
		}
	}
	if err != nil {
		return nil, nil, nop, e.fail(err)
	}
	for _, w := range conn.Warnings {
		fmt.Fprintf(e.stderr, "parti-replay %s: warning: %s\n", e.name, w)
	}
	var src *replay.StreamSource
	if e.name == "tail" && !o.noWait {
		src, err = conn.WaitSource(ctx, o.group, 0, func() {
			fmt.Fprintf(e.stderr, "parti-replay %s: stream %s does not exist yet on %s: waiting for it (--no-wait fails instead)\n",
				e.name, replay.StreamName(o.group), conn.URL)
		})
	} else {
		src, err = conn.Source(ctx, o.group)
	}
	if err != nil {
		conn.Close()
		return nil, nil, nop, e.fail(err)
	}
	return wrapProgress(e, maybeImported(ctx, src)), conn, func() { conn.Close() }, exitOK
}

// writeJSON prints v as indented JSON.
func (e *env) writeJSON(v any) int {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return e.fail(err)
	}
	return exitOK
}

// printHelp documents the command.
func (c *command) printHelp(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nUsage:\n  parti-replay %s [flags]", c.summary, c.name)
	if c.args != "" {
		fmt.Fprintf(w, " %s", c.args)
	}
	fmt.Fprintf(w, "\n\n%s\n", strings.TrimSpace(c.details))
	if len(c.examples) > 0 {
		fmt.Fprintf(w, "\nExamples:\n")
		for _, ex := range c.examples {
			fmt.Fprintf(w, "  %s\n", ex)
		}
	}
	o := &options{}
	fs := c.flagSet(o)
	var own, src []*flag.Flag
	srcNames := map[string]bool{}
	sf := flag.NewFlagSet("", flag.ContinueOnError)
	sourceFlags(sf, &options{})
	sf.VisitAll(func(f *flag.Flag) { srcNames[f.Name] = true })
	fs.VisitAll(func(f *flag.Flag) {
		if c.stream && srcNames[f.Name] {
			src = append(src, f)
		} else {
			own = append(own, f)
		}
	})
	if len(own) > 0 {
		fmt.Fprintf(w, "\nFlags:\n")
		printFlags(w, own)
	}
	if len(src) > 0 {
		fmt.Fprintf(w, "\nHistory flags (one of --file, --embedded, or a stream):\n")
		printFlags(w, src)
	}
}

func printFlags(w io.Writer, flags []*flag.Flag) {
	sort.Slice(flags, func(i, j int) bool { return flags[i].Name < flags[j].Name })
	for _, f := range flags {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n      %s", line, usage)
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" && f.DefValue != "0s" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	}
}

// warnUnsealed warns that src, an export without header and trailer (written
// by an older build), cannot be checked for a cut at its ends.
func warnUnsealed(e *env, src *replay.FileSource) {
	if !src.Sealed() {
		fmt.Fprintf(e.stderr, "parti-replay %s: warning: %s has no export header and trailer (an older build's export): a cut at its start or end cannot be detected\n", e.name, src)
	}
}
