package replay

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
)

// Position is a point of the history: a record's stream sequence and server
// time. The zero Position is "before the first record".
type Position struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
}

// Point selects a point of the history: a sequence, a server time, or (the
// zero Point) the end.
//
// The state at sequence N is the fold of every log record with a sequence
// up to N. The state at time T is the state after the last log record whose
// server time is at or before T (by position in the log: should the server
// clock have stepped backwards, a later record that is again at or before T
// counts; DESIGN "Time in audits").
type Point struct {
	Seq  uint64
	Time time.Time
}

// AtSeq returns the Point of sequence seq.
func AtSeq(seq uint64) Point { return Point{Seq: seq} }

// AtTime returns the Point of time t.
func AtTime(t time.Time) Point { return Point{Time: t} }

// IsEnd reports whether p is the end of the history.
func (p Point) IsEnd() bool { return p.Seq == 0 && p.Time.IsZero() }

func (p Point) String() string {
	switch {
	case !p.Time.IsZero():
		return "time " + p.Time.UTC().Format(time.RFC3339Nano)
	case p.Seq > 0:
		return "seq " + strconv.FormatUint(p.Seq, 10)
	}
	return "end"
}

// ParsePoint parses a sequence number ("1234"), a time in RFC 3339 form
// ("2026-01-02T03:04:05Z", fractions allowed) or "end".
func ParsePoint(s string) (Point, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "end" {
		return Point{}, nil
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		if n == 0 {
			return Point{}, fmt.Errorf("sequence 0: sequences start at 1")
		}
		return AtSeq(n), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return Point{}, fmt.Errorf("%q is neither a sequence number nor an RFC 3339 time (like 2026-01-02T15:04:05Z)", s)
	}
	return AtTime(t), nil
}

// Reads counts the records a replay read, by kind of subject.
type Reads struct {
	// Records counts every record read.
	Records uint64 `json:"records"`
	// Log, Heartbeat (heartbeats and verdicts), Snapshot and Other count
	// records by subject.
	Log       uint64 `json:"log"`
	Heartbeat uint64 `json:"heartbeat"`
	Snapshot  uint64 `json:"snapshot"`
	Other     uint64 `json:"other"`
	// Garbage counts records on any subject whose body did not decode
	// (records of a newer protocol version are not garbage).
	Garbage uint64 `json:"garbage"`
}

// subjectKind classifies a subject quickly (events.Subjects.Parse splits
// the subject; this only compares prefixes).
type subjectKind = events.SubjectKind

// folder folds records: log records into the state with decider.Apply,
// every record counted.
type folder struct {
	subj    events.Subjects
	logSubj string
	hbPfx   string
	snap    string
	s       *decider.State
	last    Position // the last log record folded
	stopped bool     // the fold stopped before the end of the history
	reads   Reads
}

func newFolder(subj events.Subjects) *folder {
	return &folder{
		subj:    subj,
		logSubj: subj.Log(),
		hbPfx:   strings.TrimSuffix(subj.Heartbeats(), ">"),
		snap:    subj.Snapshot(),
		s:       decider.New(),
	}
}

func (f *folder) kind(subject string) subjectKind {
	switch {
	case subject == f.logSubj:
		return events.SubjectLog
	case strings.HasPrefix(subject, f.hbPfx):
		return events.SubjectHeartbeat
	case subject == f.snap:
		return events.SubjectSnapshot
	}
	return events.SubjectOther
}

// count counts r and returns its kind.
func (f *folder) count(r *events.Record) subjectKind {
	f.reads.Records++
	if r.Err != nil && !errors.Is(r.Err, events.ErrNewerVersion) {
		f.reads.Garbage++
	}
	k := f.kind(r.Subject)
	switch k {
	case events.SubjectLog:
		f.reads.Log++
	case events.SubjectHeartbeat:
		f.reads.Heartbeat++
	case events.SubjectSnapshot:
		f.reads.Snapshot++
	default:
		f.reads.Other++
	}
	return k
}

// apply folds a log record.
func (f *folder) apply(r *events.Record) decider.Outcome {
	out := decider.Apply(f.s, *r)
	f.last = Position{Seq: r.Seq, Time: r.Time}
	return out
}

// capture takes the state at a Point while a fold goes by.
type capture struct {
	pt    Point
	done  bool // a sequence point was captured
	atT   bool // a time point: the current state is after a record at or before T
	state *decider.State
	pos   Position
}

func newCapture(pt Point) *capture { return &capture{pt: pt, atT: true} }

// before is called with each log record before it is folded.
func (c *capture) before(f *folder, r *events.Record) {
	switch {
	case c.pt.IsEnd() || c.done:
	case c.pt.Seq > 0:
		if r.Seq > c.pt.Seq {
			c.state, c.pos, c.done = f.s.Clone(), f.last, true
		}
	default:
		if r.Time.After(c.pt.Time) {
			if c.atT {
				c.state, c.pos, c.atT = f.s.Clone(), f.last, false
			}
		}
	}
}

// after is called with each log record after it was folded.
func (c *capture) after(r *events.Record) {
	if c.pt.Seq == 0 && !c.pt.Time.IsZero() && !r.Time.After(c.pt.Time) {
		c.atT, c.state = true, nil
	}
}

// pending reports whether the capture still needs records: the end and a
// time need all of them (a later record may again be at or before T), a
// sequence those up to it.
func (c *capture) pending() bool {
	return c.pt.Seq == 0 || !c.done
}

// finish is called at the end of the history: a point not yet captured is
// the current state (shared, not copied: the fold is over).
func (c *capture) finish(f *folder) {
	if c.state == nil {
		c.state, c.pos = f.s, f.last
	}
}

// foldTo folds src's log and returns the states at points, in order.
func foldTo(ctx context.Context, src Source, points ...Point) (*folder, []*capture, error) {
	f := newFolder(src.Subjects())
	caps := make([]*capture, len(points))
	for i, p := range points {
		caps[i] = newCapture(p)
	}
	err := src.Scan(ctx, ScanOptions{LogOnly: true, SkipHeaders: true}, func(r *events.Record) error {
		if f.count(r) != events.SubjectLog {
			return nil
		}
		more := false
		for _, c := range caps {
			c.before(f, r)
			more = more || c.pending()
		}
		if !more && len(caps) > 0 {
			f.stopped = true
			return ErrStop
		}
		f.apply(r)
		for _, c := range caps {
			c.after(r)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for _, c := range caps {
		c.finish(f)
	}
	return f, caps, nil
}

// MemberRef formats a member incarnation as "id/inc".
func MemberRef(id string, inc uint64) string {
	if id == "" {
		return ""
	}
	return id + "/" + strconv.FormatUint(inc, 10)
}

// StateReport is the group's state at a point.
type StateReport struct {
	Group  string `json:"group"`
	Source string `json:"source"`
	// Requested is the point asked for ("end", "seq N", "time T").
	Requested string `json:"requested"`
	// At is the last log record folded (zero: none).
	At Position `json:"at"`
	// End is the last log record read: the history's end when ReadAll,
	// otherwise where the fold stopped (a point before the end needs no
	// more).
	End     Position `json:"end"`
	ReadAll bool     `json:"read_all"`
	// Phase is the group's derived phase; Leader the derived leader.
	Phase  string `json:"phase"`
	Leader string `json:"leader,omitempty"`
	// Loads lists every member with the number of partitions it owns.
	Loads []MemberLoad `json:"loads"`
	// Unowned and InFlight count partitions without owner and with a
	// move waiting for its release.
	Unowned  int `json:"unowned"`
	InFlight int `json:"in_flight"`
	// Unplaceable lists the partitions that no eligible member may own:
	// their constraint requires labels no eligible member carries.
	Unplaceable []string `json:"unplaceable,omitempty"`
	// State is the durable state itself (decider.State's JSON form).
	State *decider.State `json:"state"`
	// Reads counts the log records read.
	Reads Reads `json:"reads"`
}

// MemberLoad is a member's status and load.
type MemberLoad struct {
	Member   string `json:"member"`
	JoinSeq  uint64 `json:"join_seq"`
	Status   string `json:"status"`
	Owned    int    `json:"owned"`
	Incoming int    `json:"incoming,omitempty"`
	Outgoing int    `json:"outgoing,omitempty"`
}

// StateAt returns the group's state at pt (the zero Point: the end).
func StateAt(ctx context.Context, src Source, pt Point) (*StateReport, error) {
	f, caps, err := foldTo(ctx, src, pt)
	if err != nil {
		return nil, err
	}
	c := caps[0]
	return newStateReport(src, pt, c.state, c.pos, f), nil
}

func newStateReport(src Source, pt Point, s *decider.State, at Position, f *folder) *StateReport {
	r := &StateReport{
		Group:     src.Subjects().Group,
		Source:    src.String(),
		Requested: pt.String(),
		At:        at,
		End:       f.last,
		Phase:     s.Phase().String(),
		Unowned:   s.Unowned(),
		InFlight:  s.InFlight(),
		State:     s,
		// Unplaceable: see placement_text.go.
		Unplaceable: s.Unplaceable(),
		Reads:       f.reads,
		ReadAll:     !f.stopped,
		Loads:       loads(s),
	}
	if l, ok := s.Leader(); ok {
		r.Leader = MemberRef(l.ID, l.Incarnation)
	}
	if at.Seq == 0 {
		r.Phase = "none" // no record folded: there is no group yet
	}
	return r
}

// memberStatus describes a member's flags.
func memberStatus(m *decider.Member) string {
	var parts []string
	switch {
	case m.Leaving:
		parts = append(parts, "leaving")
	case m.Closing:
		parts = append(parts, "closing")
	default:
		parts = append(parts, "live")
	}
	if m.Cordoned {
		parts = append(parts, "cordoned")
	}
	if m.Draining {
		parts = append(parts, "draining")
	}
	return strings.Join(parts, ",")
}

// loads returns every member's load in join order.
func loads(s *decider.State) []MemberLoad {
	idx := make(map[string]int, len(s.Order))
	out := make([]MemberLoad, 0, len(s.Order))
	for _, id := range s.Order {
		m := s.Members[id]
		idx[id] = len(out)
		out = append(out, MemberLoad{Member: MemberRef(m.ID, m.Incarnation), JoinSeq: m.JoinSeq, Status: memberStatus(m)})
	}
	for i := range s.Owners {
		o := &s.Owners[i]
		if k, ok := idx[o.Owner]; ok {
			out[k].Owned++
			if o.Target != "" {
				out[k].Outgoing++
			}
		}
		if k, ok := idx[o.Target]; ok && o.Target != "" {
			out[k].Incoming++
		}
	}
	return out
}
