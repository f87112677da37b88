package rawmember

import (
	"time"

	"github.com/parti-io/parti/decider"
)

// Rejoin reports whether a process whose member stopped for r should start
// a new incarnation with the same ID: yes after a removal or an expiry
// (StopRemoved, StopExpired), unless the application asked it to end
// (ending: Leave or Close was called). A leave, a close or a newer protocol
// ends the process.
func Rejoin(r StopReason, ending bool) bool {
	switch r {
	case StopRemoved, StopExpired:
		return !ending
	}
	return false
}

// CloseLanded reports whether the fold shows the close of incarnation inc
// of id (or the incarnation gone): a closing process then ends.
func CloseLanded(s *decider.State, id string, inc uint64) bool {
	me := s.Incarnation(id, inc)
	return me == nil || me.Closing
}

// SnapshotPolicy says when a leader writes a snapshot of the log's fold.
type SnapshotPolicy struct {
	// Every is the number of new log records after which a snapshot is due
	// (negative: never).
	Every int
	// TTL is the snapshot messages' TTL.
	TTL time.Duration
}

// Due reports whether a snapshot is due with the log folded up to last, the
// last snapshot taken at lastSnap (0: none) at reading lastAt, and the
// clock at now: after Every new records, or, once a history was worth a
// snapshot, before the last one's TTL runs out (a steady group appends
// nothing, and a late joiner must not find the snapshot gone and fold the
// whole history).
func (p SnapshotPolicy) Due(last, lastSnap uint64, now, lastAt time.Duration) bool {
	if p.Every < 0 {
		return false
	}
	return last-lastSnap >= uint64(p.Every) || (lastSnap > 0 && now-lastAt >= p.TTL/2)
}
