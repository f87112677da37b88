package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/jsretry"
)

// StreamName returns the name of a group's stream, "PARTI_<group>": the
// name projection.StreamName gives it (replay reads streams and does not
// import projection; a test pins the two together).
func StreamName(group string) string { return "PARTI_" + group }

// ConnectOptions say how to reach a NATS server. Empty fields take the
// value of the nats CLI context named by Context, if any.
type ConnectOptions struct {
	// Server is one or more server URLs, comma-separated. Empty: the
	// context's url, then $NATS_URL, then nats://127.0.0.1:4222.
	Server string
	// Context names a nats CLI context: the file
	// $XDG_CONFIG_HOME/nats/context/<Context>.json (by default
	// ~/.config/nats/context/<Context>.json). Only its url, creds, nkey,
	// cert, key and ca fields are read: the full context format belongs to
	// github.com/nats-io/jsm.go, which parti does not depend on. Other
	// fields that change how to connect (user, password, token, a
	// JetStream domain or API prefix, ...) are reported in Conn.Warnings
	// and otherwise ignored.
	Context string
	// Creds is a credentials file (JWT and seed).
	Creds string
	// NKey is an nkey seed file.
	NKey string
	// TLSCert and TLSKey are a client certificate and its key (both or
	// neither); TLSCA is a CA certificate to trust.
	TLSCert, TLSKey, TLSCA string
	// Timeout bounds every wait on the server (default DefaultTimeout):
	// connecting, each request, and a read that receives nothing while
	// messages are due. A read that keeps receiving is never cut short,
	// and a followed read that is merely idle never times out.
	Timeout time.Duration
	// Options are more connection options (for example a nats CLI
	// context's, read with jsm.go's natscontext as the commands do),
	// applied before those the fields above imply: the fields win.
	Options []nats.Option
	// JetStream, if set, makes the connection's JetStream context (a
	// JetStream domain or API prefix); by default jetstream.New.
	JetStream func(*nats.Conn) (jetstream.JetStream, error)
}

// Conn is a read-only connection to a server holding groups' streams.
type Conn struct {
	// URL is the server the connection was made to, without any password.
	URL string
	// Warnings lists context settings that were ignored.
	Warnings []string

	nc      *nats.Conn
	js      jetstream.JetStream
	cleanup func()
	wait    time.Duration // ConnectOptions.Timeout
}

// DefaultTimeout is the longest a read waits on the server without
// progress when no timeout is given.
const DefaultTimeout = 10 * time.Second

// ErrTimeout is wrapped by the error of a request or a read that waited
// longer than its timeout; the error says what it was waiting for.
var ErrTimeout = errors.New("replay: timed out")

// natsContext is the subset of a nats CLI context file that replay reads,
// plus the fields it warns about.
type natsContext struct {
	URL   string `json:"url"`
	Creds string `json:"creds"`
	NKey  string `json:"nkey"`
	Cert  string `json:"cert"`
	Key   string `json:"key"`
	CA    string `json:"ca"`

	User        string `json:"user"`
	Password    string `json:"password"`
	Token       string `json:"token"`
	UserJWT     string `json:"user_jwt"`
	JSDomain    string `json:"jetstream_domain"`
	JSAPIPrefix string `json:"jetstream_api_prefix"`
	InboxPrefix string `json:"inbox_prefix"`
	SocksProxy  string `json:"socks_proxy"`
	TLSFirst    bool   `json:"tls_first"`
	NSC         string `json:"nsc"`
}

// ContextPath returns the file a nats CLI context is read from.
func ContextPath(name string) (string, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return "", fmt.Errorf("replay: context name %q: want a plain name (the nats CLI's `nats context ls` lists them)", name)
	}
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("replay: context %s: %w", name, err)
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "nats", "context", name+".json"), nil
}

func loadContext(name string) (*natsContext, []string, error) {
	path, err := ContextPath(name)
	if err != nil {
		return nil, nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("replay: context %s: %w", name, err)
	}
	var c natsContext
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, nil, fmt.Errorf("replay: context %s: %s: %v", name, path, err)
	}
	var warn []string
	ignored := func(field string, set bool) {
		if set {
			warn = append(warn, fmt.Sprintf("context %s sets %q, which parti-replay does not read (it reads url, creds, nkey, cert, key and ca only)", name, field))
		}
	}
	ignored("user", c.User != "")
	ignored("password", c.Password != "")
	ignored("token", c.Token != "")
	ignored("user_jwt", c.UserJWT != "")
	ignored("jetstream_domain", c.JSDomain != "")
	ignored("jetstream_api_prefix", c.JSAPIPrefix != "")
	ignored("inbox_prefix", c.InboxPrefix != "")
	ignored("socks_proxy", c.SocksProxy != "")
	ignored("tls_first", c.TLSFirst)
	ignored("nsc", c.NSC != "")
	for _, p := range []*string{&c.Creds, &c.NKey, &c.Cert, &c.Key, &c.CA} {
		*p = expandHome(*p)
	}
	return &c, warn, nil
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}

// checkURLs validates a comma-separated server list before nats.go sees it,
// for a clear message.
func checkURLs(servers string) error {
	for _, s := range strings.Split(servers, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			return fmt.Errorf("replay: empty server URL in %q", servers)
		}
		if !strings.Contains(s, "://") {
			s = "nats://" + s
		}
		u, err := url.Parse(s)
		if err != nil {
			return fmt.Errorf("replay: bad server URL %q: %v", redact(s), errors.Unwrap(err))
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Errorf("replay: bad server URL %q: scheme %q (want nats://, tls://, ws:// or wss://)", redact(s), u.Scheme)
		}
		if u.Hostname() == "" {
			return fmt.Errorf("replay: bad server URL %q: no host", redact(s))
		}
	}
	return nil
}

// redact removes passwords and tokens from URLs for messages.
func redact(servers string) string {
	parts := strings.Split(servers, ",")
	for i, s := range parts {
		if u, err := url.Parse(strings.TrimSpace(s)); err == nil && u.User != nil {
			u.User = url.User("REDACTED")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// Connect connects to a server with o. The connection only reads: Scan
// creates ordered (ephemeral) consumers and never publishes.
func Connect(ctx context.Context, o ConnectOptions) (*Conn, error) {
	var warn []string
	if o.Context != "" {
		c, w, err := loadContext(o.Context)
		if err != nil {
			return nil, err
		}
		warn = w
		fill := func(dst *string, v string) {
			if *dst == "" {
				*dst = v
			}
		}
		fill(&o.Server, c.URL)
		fill(&o.Creds, c.Creds)
		fill(&o.NKey, c.NKey)
		fill(&o.TLSCert, c.Cert)
		fill(&o.TLSKey, c.Key)
		fill(&o.TLSCA, c.CA)
	}
	if o.Server == "" {
		o.Server = os.Getenv("NATS_URL")
	}
	if o.Server == "" {
		o.Server = nats.DefaultURL
	}
	if err := checkURLs(o.Server); err != nil {
		return nil, err
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, fmt.Errorf("replay: a client certificate needs both --tls-cert and --tls-key")
	}
	if o.Creds != "" && o.NKey != "" {
		return nil, fmt.Errorf("replay: use credentials or an nkey, not both")
	}
	opts := []nats.Option{nats.Name("parti-replay"), nats.Timeout(o.Timeout), nats.MaxReconnects(-1)}
	opts = append(opts, o.Options...)
	for _, f := range []struct{ what, path string }{
		{"credentials", o.Creds}, {"nkey", o.NKey}, {"client certificate", o.TLSCert}, {"client key", o.TLSKey}, {"CA", o.TLSCA},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return nil, fmt.Errorf("replay: %s file: %w", f.what, err)
		}
	}
	if o.Creds != "" {
		opts = append(opts, nats.UserCredentials(o.Creds))
	}
	if o.NKey != "" {
		opt, err := nats.NkeyOptionFromSeed(o.NKey)
		if err != nil {
			return nil, fmt.Errorf("replay: nkey %s: %w", o.NKey, err)
		}
		opts = append(opts, opt)
	}
	if o.TLSCert != "" {
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	nc, err := connectCtx(ctx, o.Server, opts)
	if err != nil {
		return nil, fmt.Errorf("replay: connect to %s: %w", redact(o.Server), err)
	}
	if o.JetStream != nil {
		js, err := o.JetStream(nc)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("replay: jetstream: %w", err)
		}
		return &Conn{URL: redact(o.Server), nc: nc, js: js, wait: o.Timeout, Warnings: warn}, nil
	}
	c, err := NewConn(nc, redact(o.Server), o.Timeout, nil)
	if err != nil {
		return nil, err
	}
	c.Warnings = warn
	return c, nil
}

// connectCtx connects, giving up when ctx ends.
func connectCtx(ctx context.Context, servers string, opts []nats.Option) (*nats.Conn, error) {
	type result struct {
		nc  *nats.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(servers, opts...)
		ch <- result{nc, err}
	}()
	select {
	case r := <-ch:
		return r.nc, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// NewConn wraps a connection made elsewhere (an in-process server, for
// example). url names it in messages; timeout bounds every wait as
// ConnectOptions.Timeout does (0: DefaultTimeout); cleanup, if not nil, runs
// after Close closes nc.
func NewConn(nc *nats.Conn, url string, timeout time.Duration, cleanup func()) (*Conn, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		if cleanup != nil {
			cleanup()
		}
		return nil, fmt.Errorf("replay: jetstream: %w", err)
	}
	return &Conn{URL: url, nc: nc, js: js, cleanup: cleanup, wait: timeout}, nil
}

// JetStream returns the connection's JetStream context.
func (c *Conn) JetStream() jetstream.JetStream { return c.js }

// Close closes the connection (and stops an embedded server).
func (c *Conn) Close() error {
	c.nc.Close()
	if c.cleanup != nil {
		c.cleanup()
	}
	return nil
}

// Source returns the history of group on this connection. It checks that
// the group's stream exists.
func (c *Conn) Source(ctx context.Context, group string) (*StreamSource, error) {
	s, err := NewStreamSource(ctx, c.js, group, WithTimeout(c.wait))
	if err != nil {
		return nil, err
	}
	s.where = c.URL
	return s, nil
}

// WaitSource is Source for a stream that may not exist yet: while the
// group's stream is missing it calls waiting once and asks again every
// poll (0: half a second) until the stream exists or ctx ends. Other
// errors end the wait.
func (c *Conn) WaitSource(ctx context.Context, group string, poll time.Duration, waiting func()) (*StreamSource, error) {
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	told := false
	for {
		s, err := c.Source(ctx, group)
		if !errors.Is(err, ErrNoStream) {
			return s, err
		}
		if !told && waiting != nil {
			waiting()
			told = true
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// StreamSource reads a group's history from its stream, read-only, with
// ephemeral consumers of its own.
type StreamSource struct {
	js       jetstream.JetStream
	stream   jetstream.Stream
	subjects events.Subjects
	where    string
	wait     time.Duration
	// pullWait is how long one pull request waits, bounded and followed
	// (boundedWait and followWait; tests shorten them).
	pullWait [2]time.Duration
}

// SourceOption configures a StreamSource.
type SourceOption func(*StreamSource)

// WithTimeout bounds every wait of the source on the server (see
// ConnectOptions.Timeout); 0 means DefaultTimeout.
func WithTimeout(d time.Duration) SourceOption {
	return func(s *StreamSource) { s.wait = d }
}

// attemptDeadline is when one attempt of a request gives up: a request or
// its answer lost while the connection moves to another server, or sent to
// a server on its way down, must not use up the whole timeout; a later
// attempt may succeed. A quarter of the timeout, 0.5 to 5 s, and never
// past deadline.
func attemptDeadline(deadline time.Time, timeout time.Duration) time.Time {
	d := time.Now().Add(min(max(timeout/4, 500*time.Millisecond), 5*time.Second))
	if d.After(deadline) {
		return deadline
	}
	return d
}

func (s *StreamSource) timeout() time.Duration {
	if s.wait <= 0 {
		return DefaultTimeout
	}
	return s.wait
}

// request runs f until it succeeds, fails for good, or the source's
// timeout passes (then the error wraps ErrTimeout and names what), retrying
// errors that pass on their own (a leader election, a restarting server).
// Each attempt gets at most a quarter of the timeout (attemptDeadline).
func (s *StreamSource) request(ctx context.Context, what string, f func(context.Context) error) error {
	deadline := time.Now().Add(s.timeout())
	backoff := 50 * time.Millisecond
	for {
		actx, cancel := context.WithDeadline(ctx, attemptDeadline(deadline, s.timeout()))
		err := f(actx)
		cancel()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case !jsretry.Transient(err) && !errors.Is(err, nats.ErrConnectionReconnecting) && !errors.Is(err, nats.ErrDisconnected):
			return err
		case !time.Now().Add(backoff).Before(deadline):
			return fmt.Errorf("%w after %v waiting for %s: %v", ErrTimeout, s.timeout(), what, err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

// ErrNoStream is wrapped by the error NewStreamSource returns when the
// group's stream does not exist.
var ErrNoStream = errors.New("replay: no such stream")

// NewStreamSource returns the history of group in js. It fails with an
// error wrapping ErrNoStream when the group's stream does not exist, and
// one wrapping ErrTimeout when the server does not answer in time.
func NewStreamSource(ctx context.Context, js jetstream.JetStream, group string, opts ...SourceOption) (*StreamSource, error) {
	subj, err := events.NewSubjects(group)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	s := &StreamSource{js: js, subjects: subj, pullWait: [2]time.Duration{boundedWait, followWait}}
	for _, o := range opts {
		o(s)
	}
	var st jetstream.Stream
	err = s.request(ctx, "stream "+StreamName(group)+"'s information", func(ctx context.Context) (err error) {
		st, err = js.Stream(ctx, StreamName(group))
		return err
	})
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, fmt.Errorf("%w: stream %s of group %s does not exist (is the group name right?)", ErrNoStream, StreamName(group), group)
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		return nil, fmt.Errorf("replay: the server does not have JetStream enabled")
	case errors.Is(err, ErrTimeout):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("replay: stream %s: %w", StreamName(group), err)
	}
	s.stream = st
	return s, nil
}

// Subjects implements Source.
func (s *StreamSource) Subjects() events.Subjects { return s.subjects }

// String implements Source.
func (s *StreamSource) String() string {
	if s.where == "" {
		return "stream " + StreamName(s.subjects.Group)
	}
	return "stream " + StreamName(s.subjects.Group) + " on " + s.where
}

// LastSeq returns the stream's last sequence now (0 when empty).
func (s *StreamSource) LastSeq(ctx context.Context) (uint64, error) {
	info, err := s.info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// end returns the last sequence to read (0: nothing to read).
func (s *StreamSource) end(ctx context.Context, logOnly bool) (uint64, error) {
	if logOnly {
		var m *jetstream.RawStreamMsg
		err := s.request(ctx, "the last record of "+s.subjects.Log(), func(ctx context.Context) (err error) {
			m, err = s.stream.GetLastMsgForSubject(ctx, s.subjects.Log())
			return err
		})
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return 0, nil
		}
		if errors.Is(err, ErrTimeout) {
			return 0, err
		}
		if err != nil {
			return 0, fmt.Errorf("replay: last record of %s: %w", s.subjects.Log(), err)
		}
		return m.Sequence, nil
	}
	info, err := s.info(ctx)
	if err != nil {
		return 0, err
	}
	if info.State.Msgs == 0 {
		return 0, nil
	}
	return info.State.LastSeq, nil
}

func (s *StreamSource) info(ctx context.Context) (*jetstream.StreamInfo, error) {
	var info *jetstream.StreamInfo
	err := s.request(ctx, "stream "+StreamName(s.subjects.Group)+"'s information", func(ctx context.Context) (err error) {
		info, err = s.stream.Info(ctx)
		return err
	})
	if err != nil && !errors.Is(err, ErrTimeout) {
		return nil, fmt.Errorf("replay: stream %s: %w", StreamName(s.subjects.Group), err)
	}
	return info, err
}

// streamBatch is how many messages are decoded together.
const streamBatch = 256

// fetchBatch is how many messages one pull request asks for.
const fetchBatch = 1000

// boundedWait and followWait are how long one pull request waits for
// messages before the read asks the server whether any are left: a bounded
// read (the stream up to its end) and a followed one (tail).
const (
	boundedWait = 2 * time.Second
	followWait  = 5 * time.Second
)

// Scan implements Source: a read of the group's stream (or, with
// opts.LogOnly, its log subject), from opts.From, until the last sequence
// the stream had when Scan started (unless opts.Follow).
//
// Every wait is bounded. The read uses its own ephemeral pull consumer and
// one bounded pull request at a time; when a request brings nothing while
// the stream's leader holds a message the read wants (the request or its
// answer was lost, the consumer vanished with its server, or sits on a
// replica still catching up), or a message is missing, the consumer is
// rebuilt from the next sequence. A read that receives nothing for the
// source's timeout while messages are due fails with an error wrapping
// ErrTimeout that says what it was waiting for. A followed read that is
// merely idle (nothing pending) never times out.
func (s *StreamSource) Scan(ctx context.Context, opts ScanOptions, fn func(*events.Record) error) error {
	var stop uint64
	if !opts.Follow {
		end, err := s.end(ctx, opts.LogOnly)
		if err != nil {
			return err
		}
		if end == 0 || end < opts.From {
			return nil
		}
		stop = end
	}
	r := &streamReader{s: s, opts: opts, next: max(opts.From, 1), stop: stop}
	defer r.drop()
	produce := func(pctx context.Context, emit func(*chunk) bool) error {
		return r.run(ctx, pctx, emit)
	}
	return runOrdered(ctx, produce, decodeChunk, opts.SkipHeaders, nil, fn)
}

// streamReader is one Scan's read loop: its consumer, and where it is.
type streamReader struct {
	s    *StreamSource
	opts ScanOptions
	stop uint64 // the last sequence to read; 0: follow

	cons jetstream.Consumer // nil: to (re)build
	name string
	next uint64 // the next stream sequence to read
	cseq uint64 // the consumer sequence of the last message received
}

// stalled is the error of a read that made no progress for the timeout.
func (r *streamReader) stalled(why error) error {
	pending := ""
	if r.stop > 0 {
		pending = fmt.Sprintf(" (reading up to %d)", r.stop)
	}
	return fmt.Errorf("%w after %v reading %s: waiting for the message after sequence %d%s; last problem: %v",
		ErrTimeout, r.s.timeout(), StreamName(r.s.subjects.Group), r.next-1, pending, why)
}

// build creates the read's consumer, starting at r.next.
func (r *streamReader) build(ctx context.Context) error {
	cfg := jetstream.ConsumerConfig{
		AckPolicy:         jetstream.AckNonePolicy,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: time.Minute,
		MemoryStorage:     true,
		Replicas:          1,
	}
	if r.opts.LogOnly {
		cfg.FilterSubjects = []string{r.s.subjects.Log()}
	}
	if r.next > 1 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = r.next
	}
	cons, err := r.s.js.CreateConsumer(ctx, StreamName(r.s.subjects.Group), cfg)
	if err != nil {
		return fmt.Errorf("consumer on %s: %w", StreamName(r.s.subjects.Group), err)
	}
	r.cons, r.name, r.cseq = cons, cons.CachedInfo().Name, 0
	return nil
}

// drop deletes the read's consumer, if any (best effort: an ephemeral
// consumer left behind goes away after its inactive threshold).
func (r *streamReader) drop() {
	if r.cons == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = r.s.js.DeleteConsumer(ctx, StreamName(r.s.subjects.Group), r.name)
	r.cons = nil
}

// due returns the sequence of the first message at or after r.next that
// the read wants (per opts.LogOnly), 0 when there is none, asking the
// stream's leader: a consumer's own count of what is pending comes from its
// server's copy of the stream, which may lag. It needs only the message-get
// permission replay documents, not consumer info.
func (r *streamReader) due(ctx context.Context, deadline time.Time) (uint64, error) {
	ctx, cancel := context.WithDeadline(ctx, attemptDeadline(deadline, r.s.timeout()))
	defer cancel()
	subj := r.s.subjects.All()
	if r.opts.LogOnly {
		subj = r.s.subjects.Log()
	}
	m, err := r.s.stream.GetMsg(ctx, r.next, jetstream.WithGetMsgSubject(subj))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("the next message of %s: %w", StreamName(r.s.subjects.Group), err)
	}
	return m.Sequence, nil
}

// done reports whether a bounded read has nothing left before its end.
func (r *streamReader) done(next uint64) bool {
	return r.stop > 0 && (next == 0 || next > r.stop)
}

// run reads until the end (or, following, until ctx ends), emitting chunks
// of messages. ctx is the Scan's context; pctx also ends when the records'
// consumer stopped.
func (r *streamReader) run(ctx, pctx context.Context, emit func(*chunk) bool) error {
	c := getChunk()
	defer func() { putChunk(c) }()
	flush := func() bool {
		if len(c.raws) == 0 {
			return true
		}
		ok := emit(c)
		c = getChunk()
		return ok
	}
	wait := r.s.pullWait[0]
	if r.stop == 0 {
		wait = r.s.pullWait[1]
	}
	timeout := r.s.timeout()
	progress := time.Now() // the last time the read moved or found nothing due
	backoff := 50 * time.Millisecond
	var problem error
	suspect := false // following: a message was due after an empty pull
	// retry notes a problem; it fails the read when no progress was made
	// for the timeout, else waits a little.
	retry := func(err error) error {
		problem = err
		if time.Since(progress) >= timeout {
			return r.stalled(problem)
		}
		t := time.NewTimer(min(backoff, time.Until(progress.Add(timeout))))
		defer t.Stop()
		select {
		case <-pctx.Done():
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
		return nil
	}
	for {
		if pctx.Err() != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return nil // the consumer of the records stopped
		}
		left := time.Until(progress.Add(timeout))
		if left <= 0 {
			if problem == nil {
				problem = errors.New("nothing arrived")
			}
			return r.stalled(problem)
		}
		if r.cons == nil {
			bctx, cancel := context.WithDeadline(pctx, attemptDeadline(progress.Add(timeout), timeout))
			err := r.build(bctx)
			cancel()
			if err != nil {
				if err := retry(err); err != nil {
					return err
				}
				continue
			}
		}
		fctx, cancel := context.WithTimeout(pctx, min(wait, left))
		batch, err := r.cons.Fetch(fetchBatch, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			r.drop()
			if err := retry(fmt.Errorf("pull request: %w", err)); err != nil {
				return err
			}
			continue
		}
		got, gap, drained := 0, false, false
		for m := range batch.Messages() {
			meta, err := m.Metadata()
			if err != nil {
				cancel()
				return fmt.Errorf("replay: reading %s: message metadata: %w", StreamName(r.s.subjects.Group), err)
			}
			if meta.Sequence.Consumer != r.cseq+1 {
				gap = true // a message was lost on its way: read again from r.next
				break
			}
			r.cseq = meta.Sequence.Consumer
			seq := meta.Sequence.Stream
			if r.stop > 0 && seq > r.stop {
				cancel()
				flush()
				return nil
			}
			r.next = seq + 1
			got++
			var hdr map[string][]string
			if h := m.Headers(); len(h) > 0 && !r.opts.SkipHeaders {
				hdr = h
			}
			c.raws = append(c.raws, rawRecord{seq: seq, time: meta.Timestamp.UTC(), subject: m.Subject(), header: hdr, body: m.Data()})
			last := r.stop > 0 && seq >= r.stop
			if last || len(c.raws) >= streamBatch || meta.NumPending == 0 {
				if !flush() || last {
					cancel()
					return nil
				}
			}
			if r.stop > 0 && meta.NumPending == 0 {
				// The consumer has nothing more before the end: the end
				// was removed, or the consumer's server lags behind.
				drained = true
				break
			}
		}
		ferr := batch.Error()
		cancel()
		if got > 0 {
			progress, backoff, problem, suspect = time.Now(), 50*time.Millisecond, nil, false
			if !flush() {
				return nil
			}
		}
		if drained {
			next, err := r.due(pctx, progress.Add(timeout))
			switch {
			case err != nil:
				if err := retry(err); err != nil {
					return err
				}
			case r.done(next):
				return nil
			}
			continue
		}
		switch {
		case gap:
			r.drop()
			continue
		case ferr != nil && !errors.Is(ferr, context.DeadlineExceeded):
			if pctx.Err() != nil {
				continue
			}
			r.drop()
			if err := retry(fmt.Errorf("pull request: %w", ferr)); err != nil {
				return err
			}
			continue
		case got > 0:
			continue
		}
		// Nothing came: is anything due?
		next, err := r.due(pctx, progress.Add(timeout))
		switch {
		case err != nil:
			if pctx.Err() != nil {
				continue
			}
			if err := retry(err); err != nil {
				return err
			}
		case r.done(next):
			// The stream's end was removed (heartbeats expire) or
			// filtered out: everything there is was read.
			flush()
			return nil
		case next == 0:
			progress, problem, suspect = time.Now(), nil, false // following, and idle
		case r.stop == 0 && !suspect:
			// Following: the message may have arrived as the pull
			// request expired. One more pull before suspecting it.
			suspect = true
		default:
			// A message is due and none came: the pull request or its
			// answer was lost, the consumer went silent or vanished
			// (its server restarted), or its server lags behind the
			// stream's leader. Read from a new consumer.
			suspect = false
			r.drop()
			if err := retry(fmt.Errorf("message %d is due and none was delivered", next)); err != nil {
				return err
			}
		}
	}
}
