package parti

import (
	"context"
	"errors"

	"github.com/parti-io/parti/events"
)

// Sentinel errors of a member. Test for them with errors.Is.
var (
	// ErrStopped: the member has stopped (left, closed, or failed).
	ErrStopped = errors.New("parti: member stopped")
	// ErrNewerProtocol: the group's log raised the group's protocol version
	// (a valid version-set event) above what this build speaks; the member
	// stopped acting and heartbeating so that it is expired and its
	// partitions move, or Join refused before appending anything. A stray
	// record of an unknown version is junk and stops nobody.
	ErrNewerProtocol = errors.New("parti: group uses a newer protocol")
	// ErrNotGranted: the member's claim was not granted before the context
	// ended.
	ErrNotGranted = errors.New("parti: claim not granted")
	// ErrCutShort: Close or Leave gave up waiting because its context
	// ended (or had already ended when it was called). The error also wraps
	// the context's error. See Close and Leave for what was done and what
	// was not.
	ErrCutShort = errors.New("parti: cut short by its context")
	// ErrNoWrites: the group's stream acknowledged none of the member's
	// writes (a full disk, a stream without a leader, a missing publish
	// permission). Join's error wraps it with ErrNotGranted when the claim
	// itself could not be stored, with the last append error.
	ErrNoWrites = errors.New("parti: the stream does not answer writes")
)

// RevokeReason says why an assignment was revoked.
type RevokeReason int

// Revoke reasons.
const (
	// RevokeMoved: the partition moves to another member, or a
	// re-declaration gave it a new index and so a new token (it is then
	// assigned again at once, with the new token).
	RevokeMoved RevokeReason = iota + 1
	// RevokeLeaseLost: the member's lease lapsed (its heartbeats were not
	// acknowledged in time); it may get the partition back when heartbeats
	// land again.
	RevokeLeaseLost
	// RevokeStopped: the member stopped (leave, close, removal).
	RevokeStopped
	// RevokeDropped: the partition is no longer in the declared set.
	RevokeDropped
)

func (r RevokeReason) String() string {
	switch r {
	case RevokeMoved:
		return "moved"
	case RevokeLeaseLost:
		return "lease-lost"
	case RevokeStopped:
		return "stopped"
	case RevokeDropped:
		return "dropped"
	}
	return "unknown"
}

// Assignment is one partition the member owns.
type Assignment struct {
	// Partition is the partition's ID and Index its index in the declared
	// set.
	Partition string
	Index     uint32
	// Token is the fencing token: pass it to your storage, which must reject
	// writes carrying a token lower than the highest it has seen for the
	// partition.
	Token events.Token
	// Context is cancelled when the assignment is revoked, and at the lease
	// deadline by a timer of its own, whatever the member is doing (a
	// renewed lease keeps it). Go timers do not count a suspend: after one,
	// it ends at the member's first check of its clock on waking, within a
	// quarter of the heartbeat interval, while Owns, which reads the clock,
	// is exact throughout.
	Context context.Context
}

// Handler receives assignment changes. Its methods are called from one
// goroutine, one at a time, in order: within one change, every revocation
// (in partition index order) before any assignment (in index order); the
// contract is package rawmember's Handoff, which partitest and the
// simulator drive too. They may block: a blocking Revoked delays the
// hand-off of that partition (the release is appended only after Revoked
// returns) and Close, a blocking Assigned delays the calls after it. The
// member never waits for them: heartbeats, judging and the fold go on, and
// an assignment's Context still ends at the lease deadline.
type Handler interface {
	// Assigned: the member may act on a from now until a.Context ends.
	Assigned(a Assignment)
	// Revoked: stop acting on a; return once you have.
	Revoked(a Assignment, why RevokeReason)
}

// HandlerFuncs adapts two functions to a Handler; either may be nil.
type HandlerFuncs struct {
	OnAssigned func(Assignment)
	OnRevoked  func(Assignment, RevokeReason)
}

// Assigned implements Handler.
func (h HandlerFuncs) Assigned(a Assignment) {
	if h.OnAssigned != nil {
		h.OnAssigned(a)
	}
}

// Revoked implements Handler.
func (h HandlerFuncs) Revoked(a Assignment, why RevokeReason) {
	if h.OnRevoked != nil {
		h.OnRevoked(a, why)
	}
}
