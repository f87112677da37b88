package replay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
)

// TailOptions select the records Tail shows.
type TailOptions struct {
	// Member shows only records about this member ID: its heartbeats and
	// the verdicts on it, and log events that name it anywhere.
	Member string
	// Partition shows only log events about this partition ID.
	Partition string
	// Types shows only these event types (events.Type names, and
	// "garbage" for records that did not decode).
	Types []string
	// From is the first sequence shown. 0: on a stream, what is appended
	// from now on; in a file, everything.
	From uint64
	// Follow keeps reading a stream until ctx ends.
	Follow bool
	// Ready, if set, is called once with the first sequence that will be
	// shown, before anything is read: anything appended from then on is
	// shown.
	Ready func(from uint64)
}

// TailEvent is one record as Tail shows it.
type TailEvent struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Subject string    `json:"subject"`
	// Kind is the kind of subject: log, hb, snap or other.
	Kind string `json:"kind"`
	// Type is the event type's name, "garbage" or "newer-version".
	Type string `json:"type"`
	// Event is the decoded event (absent for garbage).
	Event events.Event `json:"event,omitempty"`
	// Error is why the body did not decode: "malformed envelope",
	// "unknown event type" or "newer protocol version"; Detail is the
	// decoder's message.
	Error  string `json:"error,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Outcome and Reason say what the fold did with a log record.
	Outcome string `json:"outcome,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Summary is the key fields, as the text line shows them.
	Summary string `json:"summary"`
}

// TimeFormat is how replay's text output prints server times (UTC).
const TimeFormat = "2006-01-02T15:04:05.000Z"

// Text returns the event as one readable line: sequence, server time,
// subject kind, event type, key fields.
func (e *TailEvent) Text() string {
	s := fmt.Sprintf("%8d %s %-5s %-20s %s", e.Seq, e.Time.UTC().Format(TimeFormat), e.Kind, e.Type, e.Summary)
	return strings.TrimRight(s, " ")
}

// Tail shows src's records one by one, with fn, folding the log as it goes
// (so that it can show what the fold did with each log record, and resolve
// partition IDs). On a stream it first folds the log up to where it starts
// showing; with opts.Follow it then follows the stream until ctx ends, and
// returns ctx.Err().
func Tail(ctx context.Context, src Source, opts TailOptions, fn func(*TailEvent) error) error {
	types := map[string]bool{}
	for _, t := range opts.Types {
		for _, name := range strings.Split(t, ",") {
			if name = strings.TrimSpace(name); name == "" {
				continue
			}
			if _, ok := events.TypeByName(name); !ok && name != "garbage" && name != "newer-version" {
				return fmt.Errorf("replay: tail: unknown event type %q (known: %s)", name, strings.Join(TypeNames(), ", "))
			}
			types[name] = true
		}
	}
	from := opts.From
	if st, ok := src.(Live); ok && from == 0 {
		last, err := st.LastSeq(ctx)
		if err != nil {
			return err
		}
		from = last + 1
	}
	if opts.Ready != nil {
		opts.Ready(max(from, 1))
	}
	f := newFolder(src.Subjects())
	if from > 1 {
		// Fold the log before the first record shown, silently.
		err := src.Scan(ctx, ScanOptions{LogOnly: true, SkipHeaders: true}, func(r *events.Record) error {
			if r.Seq >= from {
				return ErrStop
			}
			f.count(r)
			f.apply(r)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return src.Scan(ctx, ScanOptions{From: from, Follow: opts.Follow, SkipHeaders: true}, func(r *events.Record) error {
		kind := f.count(r)
		te := &TailEvent{Seq: r.Seq, Time: r.Time, Subject: r.Subject, Kind: kindName(kind), Type: eventName(r), Event: r.Event}
		if r.Err != nil {
			te.Error, te.Detail = errorKind(r.Err), r.Err.Error()
		}
		show := len(types) == 0 || types[te.Type]
		if show && opts.Member != "" {
			show = aboutMember(f, r, kind, opts.Member)
		}
		if show && opts.Partition != "" {
			show = kind == events.SubjectLog && aboutPartition(f.s, r.Event, opts.Partition)
		}
		var out decider.Outcome
		if kind == events.SubjectLog {
			out = f.apply(r)
			te.Outcome, te.Reason = out.Kind.String(), out.Reason
			if !show && opts.Member != "" {
				// A claim names its member only once granted.
				if c, ok := r.Event.(*events.MemberClaimed); ok && (len(types) == 0 || types[te.Type]) {
					if m := f.s.GrantedTo(c.Nonce); m != nil && m.ID == opts.Member {
						show = true
					}
				}
			}
		}
		if !show {
			return nil
		}
		te.Summary = summarizeRecord(f, r, kind, out)
		return fn(te)
	})
}

// Live is implemented by sources that grow while they are read: streams.
type Live interface {
	// LastSeq returns the last sequence of the history now.
	LastSeq(ctx context.Context) (uint64, error)
}

// TypeNames returns the event type names Tail filters on.
func TypeNames() []string {
	var out []string
	for t := events.Type(1); t < 200; t++ {
		if n := t.String(); !strings.HasPrefix(n, "type(") {
			out = append(out, n)
		}
	}
	return append(out, "garbage", "newer-version")
}

func kindName(k subjectKind) string {
	switch k {
	case events.SubjectLog:
		return "log"
	case events.SubjectHeartbeat:
		return "hb"
	case events.SubjectSnapshot:
		return "snap"
	}
	return "other"
}

// aboutMember reports whether r is about member id (before it is folded).
func aboutMember(f *folder, r *events.Record, kind subjectKind, id string) bool {
	if kind == events.SubjectHeartbeat {
		_, m, _ := f.subj.Parse(r.Subject)
		if m == id {
			return true
		}
		if v, ok := r.Event.(*events.ExpiryVerdict); ok {
			return v.Judge == id
		}
		return false
	}
	switch e := r.Event.(type) {
	case *events.ProtocolVersionSet:
		return e.By == id
	case *events.MemberClaimed:
		return e.ID == id
	case *events.MemberLeft:
		return e.Member == id
	case *events.MemberClosing:
		return e.Member == id
	case *events.GraceEnded:
		return e.Member == id
	case *events.MemberRemoved:
		return e.Member == id || e.Judge == id
	case *events.PartitionsDeclared:
		return e.By == id
	case *events.WindowClosed:
		return e.By == id
	case *events.AssignmentDecided:
		if e.Leader == id {
			return true
		}
		for _, mv := range e.Moves {
			if mv.From == id || mv.To == id {
				return true
			}
		}
	case *events.PartitionsReleased:
		return e.Member == id
	case *events.OperatorAction:
		return e.Member == id || e.Target == id || e.By == id
	case *events.Genesis:
		return e.By == id
	}
	return false
}

// aboutPartition reports whether ev names partition id (before it is
// folded).
func aboutPartition(s *decider.State, ev events.Event, id string) bool {
	if d, ok := ev.(*events.PartitionsDeclared); ok {
		return slices.Contains(d.IDs, id)
	}
	i, ok := s.PartitionIndex(id)
	return ok && mentions(ev, i, id)
}

// summarizeRecord returns a record's key fields.
func summarizeRecord(f *folder, r *events.Record, kind subjectKind, out decider.Outcome) string {
	var b strings.Builder
	kv := func(k string, v any) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%v", k, v)
	}
	switch e := r.Event.(type) {
	case nil:
		if r.Version != 0 {
			kv("version", r.Version)
		}
		if r.Err != nil {
			kv("error", strconv.Quote(errorKind(r.Err)))
		}
	case *events.ProtocolVersionSet:
		kv("version", e.Version)
		kv("by", e.By)
	case *events.MemberClaimed:
		if e.ID != "" {
			kv("id", e.ID)
		}
		kv("nonce", e.Nonce)
		kv("max_protocol", e.MaxProtocol)
		if len(e.Labels) > 0 {
			kv("labels", strings.Join(e.Labels, ","))
		}
		if e.Capacity > 0 {
			kv("capacity", e.Capacity)
		}
		if out.Kind == decider.Applied {
			if m := f.s.GrantedTo(e.Nonce); m != nil {
				kv("granted", MemberRef(m.ID, m.Incarnation))
			} else {
				for _, c := range f.s.Pending {
					if c.Nonce == e.Nonce {
						kv("waiting_for", c.ID)
					}
				}
			}
		}
	case *events.MemberLeft:
		kv("member", MemberRef(e.Member, e.Incarnation))
	case *events.MemberClosing:
		kv("member", MemberRef(e.Member, e.Incarnation))
	case *events.GraceEnded:
		kv("member", MemberRef(e.Member, e.Incarnation))
		kv("span", fmt.Sprintf("%dms", e.SpanMillis))
	case *events.MemberRemoved:
		kv("member", MemberRef(e.Member, e.Incarnation))
		kv("reason", e.Reason)
		if e.VerdictSeq != 0 {
			kv("verdict", e.VerdictSeq)
		}
		if e.Judge != "" {
			kv("judge", e.Judge)
		}
		if e.SpanMillis != 0 {
			kv("span", fmt.Sprintf("%dms", e.SpanMillis))
		}
	case *events.PartitionsDeclared:
		kv("version", e.Version)
		if e.Parts > 1 {
			kv("part", fmt.Sprintf("%d/%d", e.Part+1, e.Parts))
		}
		kv("partitions", len(e.IDs))
		if e.Strategy != "" {
			kv("strategy", e.Strategy)
		}
		if len(e.Classes) > 0 {
			kv("classes", len(e.Classes))
		}
		kv("by", e.By)
	case *events.WindowClosed:
		kv("by", e.By)
		kv("span", fmt.Sprintf("%dms", e.SpanMillis))
	case *events.AssignmentDecided:
		kv("gen", e.Generation)
		kv("reason", e.Reason)
		kv("leader", MemberRef(e.Leader, e.LeaderInc))
		kv("based_on", e.BasedOn)
		if e.Parts > 1 {
			kv("part", fmt.Sprintf("%d/%d", e.Part+1, e.Parts))
		}
		n := 0
		for _, mv := range e.Moves {
			n += mv.Parts.Len()
		}
		kv("partitions", n)
		var moves []string
		for i, mv := range e.Moves {
			if i == 6 {
				moves = append(moves, fmt.Sprintf("+%d more", len(e.Moves)-i))
				break
			}
			if mv.From == "" {
				moves = append(moves, fmt.Sprintf("+%s[%s]", MemberRef(mv.To, mv.ToInc), partitionIDs(f.s, mv.Parts)))
			} else {
				moves = append(moves, fmt.Sprintf("%s->%s[%s]", MemberRef(mv.From, mv.FromInc), MemberRef(mv.To, mv.ToInc), partitionIDs(f.s, mv.Parts)))
			}
		}
		kv("moves", strings.Join(moves, ","))
	case *events.PartitionsReleased:
		kv("member", MemberRef(e.Member, e.Incarnation))
		var rel []string
		for i, x := range e.Released {
			if i == 8 {
				rel = append(rel, fmt.Sprintf("+%d more", len(e.Released)-i))
				break
			}
			rel = append(rel, fmt.Sprintf("%s@%d", partitionID(f.s, x.Partition), x.Token))
		}
		kv("released", strings.Join(rel, ","))
	case *events.Genesis:
		kv("from", e.FromGroup)
		kv("up_to", e.UpTo)
		kv("hash", e.Hash)
		if e.Parts > 1 {
			kv("part", fmt.Sprintf("%d/%d", e.Part+1, e.Parts))
		}
		kv("bytes", len(e.State))
		if e.By != "" {
			kv("by", e.By)
		}
		if out.Kind == decider.Applied {
			kv("members", len(f.s.Members))
			kv("partitions", len(f.s.Partitions))
		}
	case *events.OperatorAction:
		kv("action", e.Action)
		if e.Member != "" {
			kv("member", e.Member)
		}
		if e.Partition != "" {
			kv("partition", strconv.Quote(e.Partition))
		}
		if e.Target != "" {
			kv("target", e.Target)
		}
		if e.By != "" {
			kv("by", e.By)
		}
		if e.Note != "" {
			kv("note", strconv.Quote(e.Note))
		}
	case *events.Heartbeat:
		_, m, inc := f.subj.Parse(r.Subject)
		kv("member", MemberRef(m, inc))
		kv("applied", e.Applied)
	case *events.ExpiryVerdict:
		kv("member", MemberRef(e.Member, e.Incarnation))
		kv("judge", MemberRef(e.Judge, e.JudgeInc))
		kv("last_seen", e.LastSeen)
		kv("span", fmt.Sprintf("%dms", e.SpanMillis))
	case *events.SnapshotChunk:
		kv("up_to", e.UpTo)
		kv("part", fmt.Sprintf("%d/%d", e.Part+1, e.Parts))
		h := e.Hash
		if len(h) > 12 {
			h = h[:12]
		}
		kv("hash", h)
	}
	if kind == events.SubjectLog && out.Kind != decider.Applied && out.Kind != 0 {
		if out.Reason != "" {
			fmt.Fprintf(&b, " [%s: %s]", out.Kind, out.Reason)
		} else {
			fmt.Fprintf(&b, " [%s]", out.Kind)
		}
	}
	return b.String()
}

// errorKind names a decode error by its kind; the decoder's own message
// is not part of the text output (it is the JSON output's detail).
func errorKind(err error) string {
	switch {
	case errors.Is(err, events.ErrNewerVersion):
		return "newer protocol version"
	case errors.Is(err, events.ErrUnknownType):
		return "unknown event type"
	case errors.Is(err, events.ErrMalformed):
		return "malformed envelope"
	}
	return "undecodable"
}

// maxIDs is how many partition IDs a line names before it counts the rest.
const maxIDs = 8

// partitionID names the declared partition at index i (its index in
// brackets when the state does not declare it).
func partitionID(s *decider.State, i uint32) string {
	if int(i) < len(s.Partitions) {
		return s.Partitions[i]
	}
	return fmt.Sprintf("#%d", i)
}

// partitionIDs names the partitions of r by ID, the first maxIDs of them
// and then how many more.
func partitionIDs(s *decider.State, r events.Ranges) string {
	var ids []string
	n := r.Len()
	r.Each(func(i uint32) bool {
		if len(ids) == maxIDs {
			return false
		}
		ids = append(ids, partitionID(s, i))
		return true
	})
	out := strings.Join(ids, ",")
	if n > len(ids) {
		out += fmt.Sprintf(",+%d more", n-len(ids))
	}
	return out
}

// FormatRanges formats partition index ranges: "0-3,7".
func FormatRanges(r events.Ranges) string {
	var b strings.Builder
	for i := 0; i+1 < len(r); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(r[i]), 10))
		if r[i+1] != r[i] {
			b.WriteByte('-')
			b.WriteString(strconv.FormatUint(uint64(r[i+1]), 10))
		}
	}
	return b.String()
}
