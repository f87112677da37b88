package replay

import (
	"time"

	"github.com/parti-io/parti/events"
)

// HeartbeatGap is a span in which no heartbeat of any member landed while
// the group had live members, longer than AuditOptions.MaxHeartbeatGap: a
// stream that did not accept writes (a full disk), or a whole fleet down.
// Members hold no valid lease in such a span, so nothing is worked on,
// although the log, which does not change, looks healthy.
type HeartbeatGap struct {
	// From is the last heartbeat before the gap (or the record at which
	// the group got live members); To the heartbeat that ended it, or the
	// end of the history when Open.
	From     Position `json:"from"`
	To       Position `json:"to"`
	Duration string   `json:"duration"`
	Open     bool     `json:"open,omitempty"`
}

// gaps follows the group's heartbeats for the audit.
type gaps struct {
	max     time.Duration
	last    Position // the last heartbeat (or when the group got live members)
	tracked bool     // the group has live members and last is set
}

// heartbeat is called for every record of a heartbeat subject; live says
// whether the group had live members.
func (a *auditor) gapHeartbeat(r *events.Record) {
	g := &a.gaps
	if g.max <= 0 {
		return
	}
	if _, ok := r.Event.(*events.Heartbeat); !ok {
		return // verdicts and junk are not a member's heartbeat
	}
	if g.tracked {
		a.gapCheck(Position{Seq: r.Seq, Time: r.Time}, false)
	}
	g.last, g.tracked = Position{Seq: r.Seq, Time: r.Time}, len(a.f.s.LiveMembers()) > 0
}

// gapLog is called after every log record: a group that gets its first
// live member starts being watched, one that has none stops.
func (a *auditor) gapLog(r *events.Record) {
	g := &a.gaps
	if g.max <= 0 {
		return
	}
	live := len(a.f.s.LiveMembers()) > 0
	switch {
	case live && !g.tracked:
		g.last, g.tracked = Position{Seq: r.Seq, Time: r.Time}, true
	case !live && g.tracked:
		a.gapCheck(Position{Seq: r.Seq, Time: r.Time}, false)
		g.tracked = false
	}
}

// gapEnd closes the watch at the end of the history.
func (a *auditor) gapEnd() {
	if g := &a.gaps; g.max > 0 && g.tracked {
		a.gapCheck(a.rep.Last, true)
	}
}

func (a *auditor) gapCheck(to Position, open bool) {
	g := &a.gaps
	d := to.Time.Sub(g.last.Time)
	if d <= g.max {
		return
	}
	a.rep.HeartbeatGaps = append(a.rep.HeartbeatGaps, HeartbeatGap{From: g.last, To: to, Duration: fmtDuration(d), Open: open})
}

// fmtDuration rounds a measured duration for people: milliseconds.
func fmtDuration(d time.Duration) string { return d.Round(time.Millisecond).String() }
