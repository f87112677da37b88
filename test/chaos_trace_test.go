package test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/replay"
)

// dumpExpiry logs, for a diagnosis, the removal of (id, inc) and the
// heartbeats of the victim and of its judge around it (server times).
func (r *chaosRig) dumpExpiry(id string, inc uint64) {
	subj, _ := events.NewSubjects(r.group)
	src, err := replay.NewStreamSource(r.ctx, r.admin, r.group)
	if err != nil {
		r.t.Logf("dump: %v", err)
		return
	}
	var recs []events.Record
	_ = src.Scan(r.ctx, replay.ScanOptions{SkipHeaders: true}, func(rec *events.Record) error {
		c := *rec
		c.Body = slices.Clone(rec.Body)
		recs = append(recs, c)
		return nil
	})
	judge := ""
	for _, rec := range recs {
		if rm, ok := rec.Event.(*events.MemberRemoved); ok && rm.Member == id && rm.Incarnation == inc {
			judge = rm.Judge
			r.t.Logf("dump: removal at %d %s: %+v", rec.Seq, rec.Time.Format("15:04:05.000"), *rm)
		}
	}
	vs := subj.Heartbeat(id, inc)
	for _, rec := range recs {
		k, mem, _ := subj.Parse(rec.Subject)
		if rec.Subject == vs || (k == events.SubjectHeartbeat && mem == judge) {
			r.t.Logf("dump: %s seq %d %s %T %+v", rec.Time.Format("15:04:05.000"), rec.Seq, rec.Subject, rec.Event, rec.Event)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		r.t.Logf("dump: event %s", e)
	}
}

// tracef keeps the latest assignment events with their wall times, for
// the dump of a failure.
func (r *chaosRig) tracef(format string, args ...any) {
	line := time.Now().Format("15:04:05.000000") + " " + fmt.Sprintf(format, args...)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trace = append(r.trace, line)
	if len(r.trace) > 4000 {
		r.trace = slices.Clone(r.trace[2000:])
	}
}

// dumpRecent logs the last 300 assignment events and the group's log
// records of the last 15 seconds, for the diagnosis of a failure.
func (r *chaosRig) dumpRecent() {
	r.mu.Lock()
	tr := r.trace[max(0, len(r.trace)-300):]
	r.t.Logf("seed %d: the last assignment events:\n%s", r.seed, strings.Join(tr, "\n"))
	r.mu.Unlock()
	src, err := replay.NewStreamSource(r.ctx, r.admin, r.group)
	if err != nil {
		return
	}
	since := time.Now().Add(-15 * time.Second)
	var lines []string
	ctx, cancel := context.WithTimeout(r.ctx, 20*time.Second)
	defer cancel()
	_ = src.Scan(ctx, replay.ScanOptions{LogOnly: true, SkipHeaders: true}, func(rec *events.Record) error {
		if rec.Time.After(since) {
			lines = append(lines, fmt.Sprintf("%s %d %T %s", rec.Time.Format("15:04:05.000000"), rec.Seq, rec.Event, rec.Body))
		}
		return nil
	})
	r.t.Logf("seed %d: the log's last 15 s:\n%s", r.seed, strings.Join(lines, "\n"))
}

// note records a fault event with its wall time, for dumps.
func (r *chaosRig) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, time.Now().Format("15:04:05.000")+" "+fmt.Sprintf(format, args...))
}
