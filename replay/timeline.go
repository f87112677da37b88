package replay

import (
	"context"
	"fmt"
	"time"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
)

// Timeline is a group's ownership history in the shape a page draws:
// members' incarnations as lanes over time, every change of a partition's
// owner, and markers for what happened (joins, leaves, closes, crash
// verdicts, decisions, operator actions). It stores changes, not states:
// the page derives a lane's load, the unowned count and one partition's
// history from Changes, so a 500-member, 100,000-partition history stays a
// few megabytes.
//
// Times are milliseconds since Start (the server time of the first log
// record).
type Timeline struct {
	Group  string    `json:"group"`
	Source string    `json:"source"`
	Start  time.Time `json:"start"`
	// End is the server time of the last log record folded; LastSeq its
	// sequence.
	End     time.Time `json:"end"`
	LastSeq uint64    `json:"last_seq"`
	// Partitions lists every partition ID ever declared, in the order first
	// declared; Changes refer to them by index.
	Partitions []string         `json:"partitions"`
	Lanes      []Lane           `json:"lanes"`
	Changes    ChangeCols       `json:"changes"`
	Markers    []Marker         `json:"markers"`
	Reads      Reads            `json:"reads"`
	Counters   decider.Counters `json:"counters"`
}

// Lane is one incarnation of a member: from its grant to the record that
// ended it (To is -1 while it is still in the group).
type Lane struct {
	ID   string `json:"id"`
	Inc  uint64 `json:"inc"`
	From int64  `json:"from"`
	To   int64  `json:"to"`
	// End says how it ended: left, closed (its grace ended or a new
	// incarnation took over), expired, forced, protocol; empty while in the
	// group.
	End string `json:"end,omitempty"`
}

// Owner values of ChangeCols.L besides lane indices.
const (
	// LaneUnowned is a partition without owner.
	LaneUnowned = -1
	// LaneUndeclared is a partition a re-declaration dropped.
	LaneUndeclared = -2
)

// ChangeCols are the changes of partitions' owners, as parallel columns
// (compact in JSON): at time T[i] (the log record S[i]) partition P[i]
// went to lane L[i] (LaneUnowned, LaneUndeclared or a lane index).
type ChangeCols struct {
	T []int64  `json:"t"`
	P []int32  `json:"p"`
	L []int32  `json:"l"`
	S []uint64 `json:"s"`
}

// Len returns the number of changes.
func (c *ChangeCols) Len() int { return len(c.T) }

// Marker is one log record worth showing: Kind is join, leave, close,
// expired, forced, protocol-stop, grace-ended, decision, rejected,
// operator, declared, protocol or genesis; Lane is the lane it is about
// (-1: the group).
type Marker struct {
	T    int64  `json:"t"`
	Seq  uint64 `json:"seq"`
	Kind string `json:"kind"`
	Lane int32  `json:"lane"`
	Text string `json:"text"`
}

type laneKey struct {
	id  string
	inc uint64
}

// TimelineBuilder folds log records into a Timeline one by one: for a page
// that follows a live group. A TimelineBuilder is not safe for concurrent
// use.
type TimelineBuilder struct {
	f     *folder
	tl    *Timeline
	lanes map[laneKey]int32
	open  []int32 // lanes still in the group
	pidx  map[string]int32
	decl  uint64              // the declaration version gidx and prev follow
	gidx  []int32             // declared index → Partitions index
	prev  []decider.Ownership // Owners as of the last record, by declared index
	cur   []int32             // current lane by Partitions index
	// pending holds the partitions of a multi-part decision's parts until
	// its last part applies it.
	pending []uint32
	begun   bool
}

// NewTimelineBuilder returns a builder for a group with these subjects.
func NewTimelineBuilder(subj events.Subjects, source string) *TimelineBuilder {
	return &TimelineBuilder{
		f:     newFolder(subj),
		tl:    &Timeline{Group: subj.Group, Source: source},
		lanes: map[laneKey]int32{},
		pidx:  map[string]int32{},
	}
}

// BuildTimeline folds src's log into a Timeline.
func BuildTimeline(ctx context.Context, src Source) (*Timeline, error) {
	b := NewTimelineBuilder(src.Subjects(), src.String())
	err := src.Scan(ctx, ScanOptions{LogOnly: true, SkipHeaders: true}, func(r *events.Record) error {
		b.Add(r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return b.Timeline(), nil
}

// Timeline returns the timeline so far. It is the builder's own: read it
// before the next Add.
func (b *TimelineBuilder) Timeline() *Timeline {
	b.tl.Reads, b.tl.Counters = b.f.reads, b.f.s.Counters
	if b.tl.Partitions == nil {
		b.tl.Partitions = []string{}
	}
	if b.tl.Lanes == nil {
		b.tl.Lanes = []Lane{}
	}
	if b.tl.Markers == nil {
		b.tl.Markers = []Marker{}
	}
	for _, c := range []*[]int64{&b.tl.Changes.T} {
		if *c == nil {
			*c = []int64{}
		}
	}
	if b.tl.Changes.P == nil {
		b.tl.Changes.P, b.tl.Changes.L, b.tl.Changes.S = []int32{}, []int32{}, []uint64{}
	}
	return b.tl
}

// Add folds one record; records of other subjects than the log are counted
// and otherwise ignored.
func (b *TimelineBuilder) Add(r *events.Record) {
	if b.f.count(r) != events.SubjectLog {
		return
	}
	if !b.begun {
		b.begun, b.tl.Start = true, r.Time
	}
	t := r.Time.Sub(b.tl.Start).Milliseconds()
	out := b.f.apply(r)
	b.tl.End, b.tl.LastSeq = r.Time, r.Seq
	b.marker(r, out, t)
	// A claim can grant an incarnation and end another (a restart within
	// the grace) without changing the number of members.
	var membership bool
	switch r.Event.(type) {
	case *events.MemberClaimed, *events.Genesis:
		membership = true
	}
	b.grants(t, membership)
	b.changed(r, out, t)
	b.ends(r, t, membership)
}

func (b *TimelineBuilder) lane(id string, inc uint64, t int64) int32 {
	k := laneKey{id, inc}
	if l, ok := b.lanes[k]; ok {
		return l
	}
	l := int32(len(b.tl.Lanes))
	b.lanes[k] = l
	b.tl.Lanes = append(b.tl.Lanes, Lane{ID: id, Inc: inc, From: t, To: -1})
	b.open = append(b.open, l)
	return l
}

// grants opens a lane for every member of the state that has none (a
// granted claim, or members a genesis record restored).
func (b *TimelineBuilder) grants(t int64, membership bool) {
	s := b.f.s
	if !membership && len(s.Order) == len(b.open) {
		return // nothing granted or gone: every member has its lane
	}
	for _, id := range s.Order {
		m := s.Members[id]
		if _, ok := b.lanes[laneKey{m.ID, m.Incarnation}]; !ok {
			l := b.lane(m.ID, m.Incarnation, t)
			b.tl.Markers = append(b.tl.Markers, Marker{T: t, Seq: s.LastSeq, Kind: "join", Lane: l, Text: "joined as " + MemberRef(m.ID, m.Incarnation)})
		}
	}
}

// ends closes the lanes of incarnations no longer in the group.
func (b *TimelineBuilder) ends(r *events.Record, t int64, membership bool) {
	s := b.f.s
	if !membership && len(s.Order) == len(b.open) {
		return
	}
	kept := b.open[:0]
	for _, l := range b.open {
		ln := &b.tl.Lanes[l]
		if s.Incarnation(ln.ID, ln.Inc) != nil {
			kept = append(kept, l)
			continue
		}
		ln.To = t
		switch e := r.Event.(type) {
		case *events.MemberRemoved:
			if e.Member == ln.ID && e.Incarnation == ln.Inc {
				ln.End = e.Reason
			}
		case *events.GraceEnded:
			ln.End = "closed"
		}
		if ln.End == "" {
			if prev := b.lastAbout(l); prev != "" {
				ln.End = prev
			} else {
				ln.End = "gone"
			}
		}
	}
	b.open = kept
}

// lastAbout returns how the last marker about lane l ended it: left or
// closed.
func (b *TimelineBuilder) lastAbout(l int32) string {
	for i := len(b.tl.Markers) - 1; i >= 0; i-- {
		m := b.tl.Markers[i]
		if m.Lane != l {
			continue
		}
		switch m.Kind {
		case "leave":
			return "left"
		case "close":
			return "closed"
		}
	}
	return ""
}

// changed records the partitions whose owner the record changed. Releases
// and decisions can change only the partitions they name, and they are
// most of a log: only those are compared. Anything else that applied is
// compared partition by partition.
func (b *TimelineBuilder) changed(r *events.Record, out decider.Outcome, t int64) {
	s := b.f.s
	if s.DeclVersion != b.decl || len(b.gidx) != len(s.Partitions) {
		b.redeclare(r.Seq, t)
		b.pending = b.pending[:0]
		return
	}
	switch e := r.Event.(type) {
	case *events.WindowClosed, *events.ProtocolVersionSet:
		return
	case *events.PartitionsReleased:
		for _, rel := range e.Released {
			b.diffAt(rel.Partition, r.Seq, t)
		}
		return
	case *events.AssignmentDecided:
		switch out.Kind {
		case decider.Partial:
			for _, m := range e.Moves {
				m.Parts.Each(func(i uint32) bool { b.pending = append(b.pending, i); return true })
			}
			return
		case decider.Applied:
			for _, i := range b.pending {
				b.diffAt(i, r.Seq, t)
			}
			b.pending = b.pending[:0]
			for _, m := range e.Moves {
				m.Parts.Each(func(i uint32) bool { b.diffAt(i, r.Seq, t); return true })
			}
			return
		}
		b.pending = b.pending[:0]
		return
	}
	if out.Kind != decider.Applied {
		return
	}
	for i := range s.Owners {
		b.diffAt(uint32(i), r.Seq, t)
	}
}

// diffAt records partition i's change of owner, if any.
func (b *TimelineBuilder) diffAt(i uint32, seq uint64, t int64) {
	s := b.f.s
	if int(i) >= len(s.Owners) || s.Owners[i] == b.prev[i] {
		return
	}
	b.prev[i] = s.Owners[i]
	b.set(b.gidx[i], b.ownerLane(s.Owners[i], t), seq, t)
}

func (b *TimelineBuilder) ownerLane(o decider.Ownership, t int64) int32 {
	if o.Owner == "" {
		return LaneUnowned
	}
	return b.lane(o.Owner, o.Inc, t)
}

func (b *TimelineBuilder) set(g, l int32, seq uint64, t int64) {
	if b.cur[g] == l {
		return
	}
	b.cur[g] = l
	c := &b.tl.Changes
	c.T, c.P, c.L, c.S = append(c.T, t), append(c.P, g), append(c.L, l), append(c.S, seq)
}

// redeclare follows a new partition set: partitions dropped become
// LaneUndeclared, the others are compared by ID.
func (b *TimelineBuilder) redeclare(seq uint64, t int64) {
	s := b.f.s
	b.decl = s.DeclVersion
	in := make(map[int32]bool, len(s.Partitions))
	b.gidx = make([]int32, len(s.Partitions))
	for i, id := range s.Partitions {
		g, ok := b.pidx[id]
		if !ok {
			g = int32(len(b.tl.Partitions))
			b.pidx[id] = g
			b.tl.Partitions = append(b.tl.Partitions, id)
			b.cur = append(b.cur, LaneUndeclared)
		}
		b.gidx[i] = g
		in[g] = true
	}
	for g := range b.cur {
		if !in[int32(g)] {
			b.set(int32(g), LaneUndeclared, seq, t)
		}
	}
	b.prev = make([]decider.Ownership, len(s.Owners))
	for i, o := range s.Owners {
		b.prev[i] = o
		b.set(b.gidx[i], b.ownerLane(o, t), seq, t)
	}
}

// marker adds the record's marker, if it is worth one.
func (b *TimelineBuilder) marker(r *events.Record, out decider.Outcome, t int64) {
	add := func(kind string, l int32, text string) {
		b.tl.Markers = append(b.tl.Markers, Marker{T: t, Seq: r.Seq, Kind: kind, Lane: l, Text: text})
	}
	known := func(id string, inc uint64) int32 {
		if l, ok := b.lanes[laneKey{id, inc}]; ok {
			return l
		}
		return -1
	}
	if out.Kind == decider.Rejected {
		if d, ok := r.Event.(*events.AssignmentDecided); ok {
			add("rejected", known(d.Leader, d.LeaderInc), fmt.Sprintf("decision gen %d rejected: %s", d.Generation, out.Reason))
		}
		return
	}
	if out.Kind != decider.Applied {
		return
	}
	switch e := r.Event.(type) {
	case *events.MemberLeft:
		add("leave", known(e.Member, e.Incarnation), MemberRef(e.Member, e.Incarnation)+" left: its partitions are handed off")
	case *events.MemberClosing:
		add("close", known(e.Member, e.Incarnation), MemberRef(e.Member, e.Incarnation)+" closed for a restart: it keeps its partitions for the grace")
	case *events.GraceEnded:
		add("grace-ended", known(e.Member, e.Incarnation), fmt.Sprintf("%s's restart grace ended after %s", MemberRef(e.Member, e.Incarnation), Millis(e.SpanMillis)))
	case *events.MemberRemoved:
		kind, text := e.Reason, ""
		switch e.Reason {
		case events.ReasonExpired:
			text = fmt.Sprintf("%s expired (a crash or a cut-off): judged by %s after %s of silence", MemberRef(e.Member, e.Incarnation), e.Judge, Millis(e.SpanMillis))
		case events.ReasonForced:
			text = fmt.Sprintf("%s force-expired by an operator", MemberRef(e.Member, e.Incarnation))
		default:
			kind = "protocol-stop"
			text = fmt.Sprintf("%s removed: %s", MemberRef(e.Member, e.Incarnation), e.Reason)
		}
		add(kind, known(e.Member, e.Incarnation), text)
	case *events.AssignmentDecided:
		if e.Parts > 1 && e.Part != e.Parts-1 {
			return
		}
		n := 0
		for _, m := range e.Moves {
			n += m.Parts.Len()
		}
		add("decision", known(e.Leader, e.LeaderInc), fmt.Sprintf("decision gen %d (%s) by %s: %d partitions to move", e.Generation, e.Reason, MemberRef(e.Leader, e.LeaderInc), n))
	case *events.OperatorAction:
		text := "operator " + e.Action
		switch {
		case e.Partition != "":
			text += fmt.Sprintf(" %s → %s", e.Partition, e.Target)
		case e.Member != "":
			text += " " + e.Member
		}
		if e.By != "" {
			text += " by " + e.By
		}
		if e.Note != "" {
			text += fmt.Sprintf(" (%s)", e.Note)
		}
		add("operator", -1, text)
	case *events.PartitionsDeclared:
		if e.Parts > 1 && e.Part != e.Parts-1 {
			return
		}
		add("declared", -1, fmt.Sprintf("partition set version %d declared: %d partitions", e.Version, len(b.f.s.Partitions)))
	case *events.ProtocolVersionSet:
		add("protocol", -1, fmt.Sprintf("protocol version %d", e.Version))
	case *events.Genesis:
		add("genesis", -1, "genesis: this log continues an older generation's")
	}
}

// Millis formats milliseconds as a readable duration ("6.12s").
func Millis(ms int64) string {
	return (time.Duration(ms) * time.Millisecond).String()
}
