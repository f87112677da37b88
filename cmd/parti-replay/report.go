package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/replay"
)

// This file's init runs after commands.go's (files initialise in name
// order), which sets the command list.
func init() { commands = append(commands, reportCmd, serveCmd) }

var reportCmd = &command{
	name:    "report",
	summary: "parti-replay report: write the ownership timeline as one HTML page.",
	details: `
Folds the group's whole log and writes one self-contained HTML page (it needs
no network to open): every member incarnation as a lane over time with how
many partitions it held, every join, leave, close, crash verdict, decision
and operator action as a marker, the intervals in which partitions were
unowned, and, on a click, the partitions a member held at that time and a
partition's own history.`,
	examples: []string{
		"parti-replay report --server nats://localhost:4222 --group orders --out orders.html",
		"parti-replay report --file orders.jsonl --out orders.html",
	},
	stream: true,
	flags: func(fs *flag.FlagSet, o *options) {
		fs.StringVar(&o.out, "out", "", "write the page to `FILE` (required)")
	},
	do: func(ctx context.Context, e *env) int {
		if e.o.out == "" {
			return usageError(e.stderr, e.name, errors.New("--out FILE is required"))
		}
		tl, err := replay.BuildTimeline(ctx, e.src)
		if err != nil {
			return e.fail(err)
		}
		if err := writeReportFile(e.o.out, tl); err != nil {
			return e.fail(err)
		}
		fmt.Fprintf(e.stdout, "wrote %s: %d member incarnations, %d partitions, %d ownership changes, %d events, up to seq %d\n",
			e.o.out, len(tl.Lanes), len(tl.Partitions), tl.Changes.Len(), len(tl.Markers), tl.LastSeq)
		return exitOK
	},
}

// writeReportFile writes the page next to path and renames it into place,
// so that a reader never sees half a page.
func writeReportFile(path string, tl *replay.Timeline) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".report-*.html")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	if err := replay.WriteReport(w, tl, replay.ReportOptions{Generated: time.Now()}); err != nil {
		tmp.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

var serveCmd = &command{
	name:    "serve",
	summary: "parti-replay serve: show the ownership timeline of a live group in the browser.",
	details: `
Serves the page that report writes, for a live group: it folds the stream
from its start, keeps following it, and the page redraws as records arrive
(it polls every --refresh). On a file or a store copy it serves the page of
that history. Runs until interrupted (Ctrl-C).

Paths: / the page, /timeline.json the data it draws.`,
	examples: []string{
		"parti-replay serve --server nats://localhost:4222 --group orders --http 127.0.0.1:8080",
	},
	stream: true,
	flags: func(fs *flag.FlagSet, o *options) {
		fs.StringVar(&o.httpAddr, "http", "127.0.0.1:8080", "listen on `ADDR` (host:port)")
		fs.DurationVar(&o.refresh, "refresh", time.Second, "how often the page asks for new records")
	},
	do: func(ctx context.Context, e *env) int {
		ln, err := net.Listen("tcp", e.o.httpAddr)
		if err != nil {
			return usageError(e.stderr, e.name, fmt.Errorf("--http: %w", err))
		}
		lv := &liveTimeline{b: replay.NewTimelineBuilder(e.src.Subjects(), e.src.String())}
		srv := &http.Server{Handler: lv.handler(e.o.refresh), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		fmt.Fprintf(e.stdout, "serving the timeline of group %q at http://%s/ (Ctrl-C stops)\n", e.src.Subjects().Group, ln.Addr())
		_, live := e.src.(replay.Live)
		err = e.src.Scan(ctx, replay.ScanOptions{LogOnly: true, SkipHeaders: true, Follow: live}, func(r *events.Record) error {
			lv.add(r)
			return nil
		})
		if err != nil && !errors.Is(err, context.Canceled) {
			return e.fail(err)
		}
		if !live {
			<-ctx.Done() // keep serving the finished history
		}
		return exitOK
	},
}

// liveTimeline is a timeline that grows while the page reads it.
type liveTimeline struct {
	mu sync.Mutex
	b  *replay.TimelineBuilder
}

func (lv *liveTimeline) add(r *events.Record) {
	lv.mu.Lock()
	lv.b.Add(r)
	lv.mu.Unlock()
}

func (lv *liveTimeline) handler(refresh time.Duration) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		lv.mu.Lock()
		tl := *lv.b.Timeline()
		lv.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = replay.WriteReport(w, &tl, replay.ReportOptions{Live: true, DataURL: "timeline.json", Refresh: refresh, Generated: time.Now()})
	})
	mux.HandleFunc("GET /timeline.json", func(w http.ResponseWriter, r *http.Request) {
		lv.mu.Lock()
		data, err := json.Marshal(lv.b.Timeline().Page())
		lv.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(data)
	})
	return mux
}
