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
	// Timeout bounds connecting (default 5 s).
	Timeout time.Duration
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
}

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
		o.Timeout = 5 * time.Second
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, fmt.Errorf("replay: a client certificate needs both --tls-cert and --tls-key")
	}
	if o.Creds != "" && o.NKey != "" {
		return nil, fmt.Errorf("replay: use credentials or an nkey, not both")
	}
	opts := []nats.Option{nats.Name("parti-replay"), nats.Timeout(o.Timeout), nats.MaxReconnects(-1)}
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
	c, err := newConn(nc, redact(o.Server), nil)
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

func newConn(nc *nats.Conn, url string, cleanup func()) (*Conn, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		if cleanup != nil {
			cleanup()
		}
		return nil, fmt.Errorf("replay: jetstream: %w", err)
	}
	return &Conn{URL: url, nc: nc, js: js, cleanup: cleanup}, nil
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
	s, err := NewStreamSource(ctx, c.js, group)
	if err != nil {
		return nil, err
	}
	s.where = c.URL
	return s, nil
}

// StreamSource reads a group's history from its stream, read-only, with
// ordered consumers.
type StreamSource struct {
	js       jetstream.JetStream
	stream   jetstream.Stream
	subjects events.Subjects
	where    string
}

// ErrNoStream is wrapped by the error NewStreamSource returns when the
// group's stream does not exist.
var ErrNoStream = errors.New("replay: no such stream")

// NewStreamSource returns the history of group in js. It fails with an
// error wrapping ErrNoStream when the group's stream does not exist.
func NewStreamSource(ctx context.Context, js jetstream.JetStream, group string) (*StreamSource, error) {
	subj, err := events.NewSubjects(group)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	st, err := js.Stream(ctx, StreamName(group))
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, fmt.Errorf("%w: stream %s of group %s does not exist (is the group name right?)", ErrNoStream, StreamName(group), group)
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		return nil, fmt.Errorf("replay: the server does not have JetStream enabled")
	case err != nil:
		return nil, fmt.Errorf("replay: stream %s: %w", StreamName(group), err)
	}
	return &StreamSource{js: js, stream: st, subjects: subj}, nil
}

func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, 10*time.Second)
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
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("replay: stream %s: %w", StreamName(s.subjects.Group), err)
	}
	return info.State.LastSeq, nil
}

// end returns the last sequence to read (0: nothing to read).
func (s *StreamSource) end(ctx context.Context, logOnly bool) (uint64, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if logOnly {
		m, err := s.stream.GetLastMsgForSubject(ctx, s.subjects.Log())
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("replay: last record of %s: %w", s.subjects.Log(), err)
		}
		return m.Sequence, nil
	}
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("replay: stream %s: %w", StreamName(s.subjects.Group), err)
	}
	if info.State.Msgs == 0 {
		return 0, nil
	}
	return info.State.LastSeq, nil
}

// streamBatch is how many messages are decoded together.
const streamBatch = 256

// idleCheck is how long a bounded Scan waits for a message before it asks
// the server whether anything is left (a heartbeat at the end of the stream
// may have expired meanwhile).
const idleCheck = 2 * time.Second

// Scan implements Source: an ordered consumer over the group's stream (or,
// with opts.LogOnly, its log subject), from opts.From, until the last
// sequence the stream had when Scan started (unless opts.Follow).
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
	cfg := jetstream.OrderedConsumerConfig{InactiveThreshold: time.Minute}
	if opts.LogOnly {
		cfg.FilterSubjects = []string{s.subjects.Log()}
	}
	if opts.From > 1 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = opts.From
	}
	cctx, cancel := withTimeout(ctx)
	cons, err := s.js.OrderedConsumer(cctx, StreamName(s.subjects.Group), cfg)
	cancel()
	if err != nil {
		return fmt.Errorf("replay: consumer on %s: %w", StreamName(s.subjects.Group), err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		return fmt.Errorf("replay: consumer on %s: %w", StreamName(s.subjects.Group), err)
	}
	defer it.Stop()

	produce := func(pctx context.Context, emit func(*chunk) bool) error {
		// pctx ends with ctx, and when fn stopped the scan: either way a
		// blocked Next must return.
		stopIt := context.AfterFunc(pctx, it.Stop)
		defer stopIt()
		c := getChunk()
		flush := func() bool {
			if len(c.raws) == 0 {
				return true
			}
			ok := emit(c)
			c = getChunk()
			return ok
		}
		defer func() { putChunk(c) }()
		for {
			var (
				m   jetstream.Msg
				err error
			)
			if stop > 0 {
				m, err = it.Next(jetstream.NextMaxWait(idleCheck))
			} else {
				m, err = it.Next()
			}
			switch {
			case err == nil:
			case ctx.Err() != nil:
				return ctx.Err()
			case pctx.Err() != nil:
				return nil // the consumer of the records stopped
			case stop > 0 && errors.Is(err, nats.ErrTimeout):
				ictx, cancel := withTimeout(ctx)
				info, ierr := cons.Info(ictx)
				cancel()
				if ierr == nil && info.NumPending == 0 {
					flush()
					return nil
				}
				continue
			default:
				return fmt.Errorf("replay: reading %s: %w", StreamName(s.subjects.Group), err)
			}
			meta, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("replay: reading %s: message metadata: %w", StreamName(s.subjects.Group), err)
			}
			seq := meta.Sequence.Stream
			if stop > 0 && seq > stop {
				flush()
				return nil
			}
			var hdr map[string][]string
			if h := m.Headers(); len(h) > 0 && !opts.SkipHeaders {
				hdr = h
			}
			c.raws = append(c.raws, rawRecord{seq: seq, time: meta.Timestamp.UTC(), subject: m.Subject(), header: hdr, body: m.Data()})
			last := stop > 0 && (seq >= stop || meta.NumPending == 0)
			if last || len(c.raws) >= streamBatch || meta.NumPending == 0 {
				if !flush() || last {
					return nil
				}
			}
		}
	}
	return runOrdered(ctx, produce, decodeChunk, opts.SkipHeaders, fn)
}
