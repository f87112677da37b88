package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/projection"
	"github.com/parti-io/parti/replay"
)

// typeStat is what one event type takes of a span of the log.
type typeStat struct {
	records, bytes int64
}

// batchStat sums the multi-part events (decisions, declarations) whose
// every part lies in a span of the log: each is one atomic batch of Parts
// messages, Part 0 first.
type batchStat struct {
	count           int64 // complete decisions (declarations)
	parts, maxParts int64
	bytes, maxBytes int64
	maxPartBytes    int64

	// The one being summed: its parts so far and their bytes (open: its
	// Part 0 was seen in the span).
	open           bool
	curParts, curB int64
}

// add counts one part of size b, Part part of parts (0: a single message).
func (s *batchStat) add(part, parts int, b int64) {
	if parts < 1 {
		parts = 1
	}
	if part == 0 {
		s.open, s.curParts, s.curB = true, 0, 0
	}
	s.maxPartBytes = max(s.maxPartBytes, b)
	if !s.open {
		return // its first parts were before the span
	}
	s.curParts++
	s.curB += b
	if part == parts-1 {
		s.count++
		s.parts += s.curParts
		s.maxParts = max(s.maxParts, s.curParts)
		s.bytes += s.curB
		s.maxBytes = max(s.maxBytes, s.curB)
		s.open = false
	}
}

// logStats is what a span of a group's log holds.
type logStats struct {
	records, bytes int64
	byType         map[string]*typeStat // by the event type's name ("garbage" when it did not decode)
	decisions      batchStat
	declarations   batchStat
	// Membership changes: claims, closes, leaves and removals.
	claims, closes, leaves, removals int64
}

func (s *logStats) changes() int64 { return s.claims + s.closes + s.leaves + s.removals }

// msgBytes is the size of a message as NATS carries it: its body and its
// headers in their wire form ("NATS/1.0\r\n", "Key: value\r\n" each, and
// "\r\n"). The subject and the store's per-message overhead are not counted.
func msgBytes(r *events.Record) int64 {
	n := int64(len(r.Body))
	if len(r.Header) > 0 {
		n += int64(len("NATS/1.0\r\n") + 2)
		for k, vs := range r.Header {
			for _, v := range vs {
				n += int64(len(k) + 2 + len(v) + 2)
			}
		}
	}
	return n
}

// errSpanEnd ends a scan at the end of the span.
var errSpanEnd = errors.New("end of span")

// readLog reads the log records of group with sequences in (after, upTo]
// (upTo 0: up to the log's end when the read starts) and sums them.
func readLog(ctx context.Context, js jetstream.JetStream, group string, after, upTo uint64) (*logStats, error) {
	st := &logStats{byType: map[string]*typeStat{}}
	src, err := replay.NewStreamSource(ctx, js, group)
	if err != nil {
		return nil, err
	}
	err = src.Scan(ctx, replay.ScanOptions{LogOnly: true, From: after + 1}, func(r *events.Record) error {
		if upTo > 0 && r.Seq > upTo {
			return errSpanEnd
		}
		b := msgBytes(r)
		st.records++
		st.bytes += b
		name := "garbage"
		if r.Event != nil {
			name = r.Event.Type().String()
		}
		t := st.byType[name]
		if t == nil {
			t = &typeStat{}
			st.byType[name] = t
		}
		t.records++
		t.bytes += b
		switch e := r.Event.(type) {
		case *events.AssignmentDecided:
			st.decisions.add(e.Part, e.Parts, b)
		case *events.PartitionsDeclared:
			st.declarations.add(e.Part, e.Parts, b)
		case *events.MemberClaimed:
			st.claims++
		case *events.MemberClosing:
			st.closes++
		case *events.MemberLeft:
			st.leaves++
		case *events.MemberRemoved:
			st.removals++
		}
		return nil
	})
	if err != nil && !errors.Is(err, errSpanEnd) {
		return nil, fmt.Errorf("read the log of %s: %w", group, err)
	}
	return st, nil
}

// lastLogSeq returns the sequence of the group's last log record (0: none).
func lastLogSeq(ctx context.Context, js jetstream.JetStream, group string) (uint64, error) {
	subj, err := events.NewSubjects(group)
	if err != nil {
		return 0, err
	}
	s, err := js.Stream(ctx, projection.StreamName(group))
	if err != nil {
		return 0, err
	}
	m, err := s.GetLastMsgForSubject(ctx, subj.Log())
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return m.Sequence, nil
}

// figName turns an event type's name into a figure name's token.
func figName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// printLog prints the whole log's figures: per event type its records and
// bytes, and per decision and per declaration its parts and bytes.
func (d *driver) printLog(prefix string, st *logStats) {
	d.fig(prefix+"_log_records", float64(st.records), "records")
	d.fig(prefix+"_log_bytes", float64(st.bytes), "B")
	names := make([]string, 0, len(st.byType))
	for n := range st.byType {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		t := st.byType[n]
		d.fig(prefix+"_log_"+figName(n)+"_records", float64(t.records), "records")
		d.fig(prefix+"_log_"+figName(n)+"_bytes", float64(t.bytes), "B")
	}
	for _, b := range []struct {
		name string
		s    *batchStat
	}{{"decision", &st.decisions}, {"declaration", &st.declarations}} {
		p := prefix + "_log_" + b.name
		d.fig(p+"s", float64(b.s.count), b.name+"s")
		if b.s.count == 0 {
			continue
		}
		n := float64(b.s.count)
		d.fig(p+"_parts_mean", float64(b.s.parts)/n, "parts/"+b.name)
		d.fig(p+"_parts_max", float64(b.s.maxParts), "parts/"+b.name)
		d.fig(p+"_bytes_mean", float64(b.s.bytes)/n, "B/"+b.name)
		d.fig(p+"_bytes_max", float64(b.s.maxBytes), "B/"+b.name)
		d.fig(p+"_part_bytes_max", float64(b.s.maxPartBytes), "B/part")
	}
}

// printGrowth prints what a step appended to the log, and that scaled to
// 1,000 membership changes (claims, closes, leaves, removals).
func (d *driver) printGrowth(prefix string, st *logStats) {
	d.fig(prefix+"_log_records", float64(st.records), "records")
	d.fig(prefix+"_log_bytes", float64(st.bytes), "B")
	d.fig(prefix+"_membership_changes", float64(st.changes()), "changes")
	if c := st.changes(); c > 0 {
		d.fig(prefix+"_log_bytes_per_1000_changes", 1000*float64(st.bytes)/float64(c), "B")
		d.fig(prefix+"_log_records_per_1000_changes", 1000*float64(st.records)/float64(c), "records")
	}
}
