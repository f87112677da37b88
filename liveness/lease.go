package liveness

import "time"

// Lease is the interval during which a member may act on its partitions
// (DESIGN rule 4). It is renewed only by acknowledged heartbeats and timed from
// when each acknowledged heartbeat was SENT, not from when its ack arrived: the
// judge counts from when it saw that heartbeat, which is no earlier than the
// send, so a lease timed from the send always ends first.
//
// With Lease < Expiry − Margin (see [Timings.Validate]) the lease runs out at
// least Margin before any judge can expire the member, so a member that checks
// [Lease.Valid] before each action never overlaps with its successor while its
// pauses (between the check and the action) stay below the margin.
//
// The zero value is a lease of length zero that is never valid; use [NewLease].
// A Lease is not safe for concurrent use.
type Lease struct {
	length   time.Duration
	deadline time.Duration
	acked    bool
	revoked  bool
}

// NewLease returns a lease of the given length that is not yet valid: it
// becomes valid with the first [Lease.Acked].
func NewLease(length time.Duration) *Lease {
	return &Lease{length: length}
}

// Length returns the lease length given to [NewLease].
func (l *Lease) Length() time.Duration { return l.length }

// Acked records that the heartbeat sent at reading sentAt was acknowledged by
// the server. The deadline becomes sentAt + length unless it is already later:
// an acknowledgement arriving out of order never shortens the lease. Acked has
// no effect on a revoked lease, so a late ack cannot revive it.
func (l *Lease) Acked(sentAt time.Duration) {
	if l.revoked {
		return
	}
	d := sentAt + l.length
	if !l.acked || d > l.deadline {
		l.deadline = d
	}
	l.acked = true
}

// Valid reports whether the member may act at reading now: the lease was
// acknowledged at least once, was not revoked, and now is strictly before the
// deadline.
func (l *Lease) Valid(now time.Duration) bool {
	return l.acked && !l.revoked && now < l.deadline
}

// Deadline returns the first reading at which the lease is no longer valid,
// for scheduling the moment to stop acting. It is zero while the lease has
// never been acknowledged and after it was revoked; [Lease.Valid] is the
// authority in every case.
func (l *Lease) Deadline() time.Duration {
	if !l.acked || l.revoked {
		return 0
	}
	return l.deadline
}

// Revoke ends the lease for good: the member was expired, lost its heartbeat
// subject to someone else, or saw its own removal in the fold. A rejoining
// member uses a new Lease for its new incarnation.
func (l *Lease) Revoke() { l.revoked = true }

// Revoked reports whether [Lease.Revoke] was called.
func (l *Lease) Revoked() bool { return l.revoked }
