package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti/cmd/internal/natsctx"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/projection"
	"github.com/parti-io/parti/replay"
)

// Headers import adds so that export gives back the original record: the
// original sequence and server time, and the original NATS control headers
// (Nats-TTL, Nats-Expected-..., batch headers), which would change what the
// server does with the message if published as they are.
const (
	importSeqHeader  = "Parti-Import-Seq"
	importTimeHeader = "Parti-Import-Time"
	importNatsPrefix = "Parti-Import-" // + the original name, for Nats-* headers
	// importGapTTL is the TTL of the filler messages that keep the
	// original sequences where the history has gaps.
	importGapTTL = time.Second
)

func init() { commands = append(commands, importCmd) }

var importCmd = &command{
	name:    "import",
	summary: "parti-replay import: load an export file into a new stream.",
	details: `
Publishes every record of an export file, in order, into a new stream for
the file's group on a server (for example a test server, to replay a
production history there), or, with --embedded DIR, into a new store
directory (read it afterwards with --embedded DIR like any stopped store).
The stream must not exist: import never writes to an existing group's
stream, and --embedded only to a directory that is new or empty.

Each record keeps its subject, body and sequence (where the history has
gaps, filler messages with a one-second TTL hold the place and expire); the
server assigns new times, so the original time, sequence and NATS control
headers ride in Parti-Import-* headers that export reads back: export →
import → export gives the same file.`,
	examples: []string{
		"parti-replay import --file orders.jsonl --server nats://localhost:4222",
		"parti-replay import --file orders.jsonl --embedded ./orders-store",
	},
	flags: func(fs *flag.FlagSet, o *options) {
		fs.StringVar(&o.file, "file", "", "the export `FILE` to load (required)")
		fs.StringVar(&o.embedded, "embedded", "", "load into a new store directory `DIR` (an embedded server writes it) instead of a server")
		fs.StringVar(&o.server, "server", "", "NATS server `URL`s, comma-separated (default: the context's, $NATS_URL, nats://127.0.0.1:4222)")
		fs.StringVar(&o.context, "context", "", "connect as the nats CLI context `NAME` says (every setting; flags win)")
		fs.StringVar(&o.creds, "creds", "", "NATS credentials `FILE`")
		fs.StringVar(&o.nkey, "nkey", "", "NATS nkey seed `FILE`")
		fs.StringVar(&o.tlsCert, "tls-cert", "", "TLS client certificate `FILE`")
		fs.StringVar(&o.tlsKey, "tls-key", "", "TLS client key `FILE`")
		fs.StringVar(&o.tlsCA, "tls-ca", "", "TLS CA certificate `FILE` to trust")
		fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "how long to wait for the server at each step")
		fs.IntVar(&o.replicas, "replicas", 1, "the new stream's replicas")
	},
	do: func(ctx context.Context, e *env) int {
		if e.o.file == "" {
			return usageError(e.stderr, e.name, errors.New("--file FILE is required"))
		}
		src, err := replay.OpenFile(e.o.file, "")
		if err != nil {
			return e.fail(err)
		}
		warnUnsealed(e, src)
		if e.o.embedded != "" {
			if e.o.server != "" || e.o.context != "" {
				return usageError(e.stderr, e.name, errors.New("--embedded writes a new store directory: --server and --context do not apply"))
			}
			conn, err := newStore(e.o.embedded, e.o.timeout)
			if err != nil {
				return e.fail(err)
			}
			defer conn.Close()
			n, skipped, err := importFile(ctx, conn.JetStream(), src, e.o.replicas, e.o.timeout)
			if err != nil {
				return e.fail(err)
			}
			if skipped > 0 {
				fmt.Fprintf(e.stderr, "parti-replay import: warning: %d records without a sequence were skipped (no server can store them as they are)\n", skipped)
			}
			fmt.Fprintf(e.stdout, "imported %d records into stream %s (group %s) in the store %s\n", n, replay.StreamName(src.Subjects().Group), src.Subjects().Group, e.o.embedded)
			return exitOK
		}
		co := replay.ConnectOptions{
			Server: e.o.server, Creds: e.o.creds, NKey: e.o.nkey,
			TLSCert: e.o.tlsCert, TLSKey: e.o.tlsKey, TLSCA: e.o.tlsCA, Timeout: e.o.timeout,
		}
		if err := natsctx.Apply(&co, e.o.context); err != nil {
			return e.fail(err)
		}
		conn, err := replay.Connect(ctx, co)
		if err != nil {
			return e.fail(err)
		}
		defer conn.Close()
		n, skipped, err := importFile(ctx, conn.JetStream(), src, e.o.replicas, e.o.timeout)
		if err != nil {
			return e.fail(err)
		}
		if skipped > 0 {
			fmt.Fprintf(e.stderr, "parti-replay import: warning: %d records without a sequence were skipped (no server can store them as they are)\n", skipped)
		}
		fmt.Fprintf(e.stdout, "imported %d records into stream %s (group %s)\n", n, replay.StreamName(src.Subjects().Group), src.Subjects().Group)
		return exitOK
	},
}

// importFile publishes src's records into a new stream and returns how
// many it published.
// Records without a sequence cannot be stored as they are: they are
// skipped and counted in skipped.
func importFile(ctx context.Context, js jetstream.JetStream, src replay.Source, replicas int, timeout time.Duration) (n, skipped int, err error) {
	subj := src.Subjects()
	// The whole file is read once before anything is created: a cut or
	// spliced file (replay.ErrCut) is refused with nothing published.
	first := uint64(0)
	err = src.Scan(ctx, replay.ScanOptions{SkipHeaders: true}, func(r *events.Record) error {
		if first == 0 && r.Seq != 0 {
			first = r.Seq
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	stream, err := projection.CreateAt(cctx, js, projection.StreamConfig{Group: subj.Group, Replicas: replicas}, first)
	cancel()
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return 0, 0, fmt.Errorf("stream %s exists: import only creates new streams (delete it on a test server, or import elsewhere)", replay.StreamName(subj.Group))
	}
	if err != nil {
		return 0, 0, err
	}
	gap := subj.Group
	gap = "parti." + gap + ".import-gap"
	if !strings.HasPrefix(gap, strings.TrimSuffix(subj.All(), ">")) {
		return 0, 0, fmt.Errorf("import: the filler subject %s is outside the group's subjects %s", gap, subj.All())
	}
	const window = 512
	var pending []jetstream.PubAckFuture
	var wantSeq []uint64
	settle := func(keep int) error {
		for len(pending) > keep {
			f, want := pending[0], wantSeq[0]
			select {
			case ack := <-f.Ok():
				if ack.Sequence != want {
					return fmt.Errorf("import: record %d was stored at sequence %d: the stream is not new, or someone else publishes to it", want, ack.Sequence)
				}
			case err := <-f.Err():
				return fmt.Errorf("import: record %d: %w", want, err)
			case <-time.After(timeout):
				return fmt.Errorf("import: record %d: no acknowledgement within %v", want, timeout)
			case <-ctx.Done():
				return ctx.Err()
			}
			pending, wantSeq = pending[1:], wantSeq[1:]
		}
		return nil
	}
	publish := func(m *nats.Msg, seq uint64) error {
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			return fmt.Errorf("import: record %d: %w", seq, err)
		}
		pending, wantSeq = append(pending, f), append(wantSeq, seq)
		return settle(window)
	}
	next, fillers := first, 0
	err = src.Scan(ctx, replay.ScanOptions{}, func(r *events.Record) error {
		if r.Seq == 0 {
			// No stored message lacks a sequence: a record made up by
			// hand (or a test). A server cannot store it as it is.
			skipped++
			return nil
		}
		for ; next < r.Seq; next++ {
			h := nats.Header{}
			h["Nats-TTL"] = []string{importGapTTL.String()}
			if err := publish(&nats.Msg{Subject: gap, Header: h}, next); err != nil {
				return err
			}
			fillers++
		}
		if r.Seq < next {
			return fmt.Errorf("import: record %d comes after %d: the file is not in stream order", r.Seq, next-1)
		}
		h := nats.Header{}
		for k, v := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "nats-") {
				k = importNatsPrefix + k
			}
			h[k] = append([]string(nil), v...)
		}
		h[importSeqHeader] = []string{strconv.FormatUint(r.Seq, 10)}
		h[importTimeHeader] = []string{r.Time.UTC().Format(time.RFC3339Nano)}
		body := append([]byte(nil), r.Body...)
		if err := publish(&nats.Msg{Subject: r.Subject, Header: h, Data: body}, r.Seq); err != nil {
			return err
		}
		next, n = r.Seq+1, n+1
		return nil
	})
	if err == nil {
		err = settle(0)
	}
	if err != nil {
		return n, skipped, err
	}
	if fillers == 0 {
		return n, skipped, nil
	}
	// Wait for the fillers to expire, so that what follows reads the
	// history alone.
	deadline := time.Now().Add(importGapTTL + 10*time.Second)
	for {
		info, err := stream.Info(ctx)
		if err != nil {
			return n, skipped, err
		}
		if info.State.Msgs == uint64(n) {
			return n, skipped, nil
		}
		if time.Now().After(deadline) {
			return n, skipped, fmt.Errorf("import: %d filler messages have not expired", info.State.Msgs-uint64(n))
		}
		select {
		case <-ctx.Done():
			return n, skipped, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// restoreImported gives an imported record back its original sequence,
// time and NATS headers (see import).
func restoreImported(r *events.Record) {
	if r.Header == nil {
		return
	}
	if v := r.Header[importSeqHeader]; len(v) == 1 {
		if seq, err := strconv.ParseUint(v[0], 10, 64); err == nil {
			r.Seq = seq
		}
	}
	if v := r.Header[importTimeHeader]; len(v) == 1 {
		if t, err := time.Parse(time.RFC3339Nano, v[0]); err == nil {
			r.Time = t
		}
	}
	h := map[string][]string{}
	for k, v := range r.Header {
		switch {
		case k == importSeqHeader || k == importTimeHeader:
		case strings.HasPrefix(k, importNatsPrefix) && strings.HasPrefix(strings.ToLower(k[len(importNatsPrefix):]), "nats-"):
			h[k[len(importNatsPrefix):]] = v
		default:
			h[k] = v
		}
	}
	if len(h) == 0 {
		h = nil
	}
	r.Header = h
}

// importedSource reads a stream that import loaded as the history it came
// from: every record with its original sequence, time and headers (reading
// headers costs the fold some allocations, so only such streams pay it).
type importedSource struct{ replay.Source }

// importedLiveSource is an importedSource that still grows (tail, serve).
type importedLiveSource struct {
	importedSource
	live replay.Live
}

// LastSeq implements replay.Live.
func (s importedLiveSource) LastSeq(ctx context.Context) (uint64, error) { return s.live.LastSeq(ctx) }

// Scan implements replay.Source.
func (s importedSource) Scan(ctx context.Context, opts replay.ScanOptions, fn func(*events.Record) error) error {
	skip := opts.SkipHeaders
	opts.SkipHeaders = false
	return s.Source.Scan(ctx, opts, func(r *events.Record) error {
		restoreImported(r)
		if skip {
			r.Header = nil
		}
		return fn(r)
	})
}

// maybeImported wraps src when its first record was loaded by import.
func maybeImported(ctx context.Context, src replay.Source) replay.Source {
	imported := false
	_ = src.Scan(ctx, replay.ScanOptions{}, func(r *events.Record) error {
		_, imported = r.Header[importSeqHeader]
		return replay.ErrStop
	})
	if !imported {
		return src
	}
	if l, ok := src.(replay.Live); ok {
		return importedLiveSource{importedSource{src}, l}
	}
	return importedSource{src}
}

// newStore starts an embedded server writing the store directory dir, which
// must not exist or be empty, with no network listener, and connects to it
// in process. Close shuts it down, leaving the store.
func newStore(dir string, timeout time.Duration) (*replay.Conn, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("import: %s is not empty: --embedded writes a new store only", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("import: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	s, err := server.NewServer(&server.Options{
		ServerName: "parti-replay-import", Host: "127.0.0.1", Port: server.RANDOM_PORT,
		DontListen: true, NoLog: true, NoSigs: true, JetStream: true, StoreDir: dir,
	})
	if err != nil {
		return nil, fmt.Errorf("import: embedded server: %w", err)
	}
	go s.Start()
	stop := func() { s.Shutdown(); s.WaitForShutdown() }
	if !s.ReadyForConnections(time.Minute) {
		stop()
		return nil, fmt.Errorf("import: the embedded server on %s did not start", dir)
	}
	nc, err := nats.Connect("", nats.InProcessServer(s), nats.Name("parti-replay"))
	if err != nil {
		stop()
		return nil, fmt.Errorf("import: embedded server: %w", err)
	}
	return replay.NewConn(nc, "embedded server on "+dir, timeout, stop)
}
