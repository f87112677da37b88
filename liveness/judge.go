package liveness

import (
	"fmt"
	"time"
)

// JudgeConfig configures a [Judge]. [Timings.JudgeConfig] derives it from a
// timing profile.
type JudgeConfig struct {
	// Expiry is how long the judge's own count must exceed before a verdict is
	// due. Must be > 0.
	Expiry time.Duration

	// MaxGap is the longest time between two consecutive acknowledgements of
	// the judge's own heartbeats (and between the last one and now) that still
	// counts as "no gap". Healthy heartbeats are acknowledged at most
	// heartbeat interval + ack budget apart, which is what
	// [Timings.JudgeConfig] sets. Must be > 0.
	MaxGap time.Duration
}

// Validate reports a non-positive Expiry or MaxGap with an error that wraps
// [ErrInvalidTimings] and names the field.
func (c JudgeConfig) Validate() error {
	if c.Expiry <= 0 {
		return &TimingsError{Field: "Expiry", Rule: TimingsPositive, msg: fmt.Sprintf("Expiry (%v) must be > 0", c.Expiry)}
	}
	if c.MaxGap <= 0 {
		return &TimingsError{Field: "MaxGap", Rule: TimingsPositive, msg: fmt.Sprintf("MaxGap (%v) must be > 0", c.MaxGap)}
	}
	return nil
}

// Judge measures, on its owner's clock, whether the owner's victim (the live
// member just before it in join order) has been silent for longer than the
// expiry, under DESIGN rule 2:
//
//	countStart = max(when the victim's last heartbeat was seen,
//	                 start of the judge's current gap-free run of acks)
//	due        = now − countStart > Expiry  AND  now − (judge's last ack) ≤ MaxGap
//
// For an inherited victim (no heartbeat of it seen since [Judge.Watch]) "when
// the victim was last seen" is replaced by the judge's own first acknowledged
// heartbeat SENT at or after the Watch reading.
//
// The judge's own heartbeats form runs: a run is broken (a gap) by
// [Judge.OwnFailure] or by two consecutive acknowledgements more than MaxGap
// apart, and the next acknowledgement starts a new run. A run starts at the
// reading when its first heartbeat's ACK ARRIVED (ackedAt), not when it was
// sent: the ack proves the stream was appending at some moment no later than
// ackedAt but possibly long after sentAt (a heartbeat that stalled through a
// leader election is sent before the outage and acked after it), so starting
// the run at sentAt would count outage time against the victim. The same
// holds for the inherited start. This costs at most one ack latency of
// detection time, and only right after a gap or a Watch.
//
// Together the two conditions mean: an outage of the stream, of the judge's
// connection, or a stream-leader election restarts every count, so the fleet
// is not expired when the stream comes back; a judge that is itself cut off
// never issues a verdict. The verdict is fenced on the subject's last
// sequence the judge saw, whatever that message holds (0 if it saw none), so
// the server refuses it if the victim heartbeated meanwhile: whoever judges,
// the fence decides.
//
// The zero value is not usable; use [NewJudge]. A Judge is not safe for
// concurrent use. Readings passed to its methods come from one clock and
// should not decrease; an acknowledgement older than the latest one is
// ignored.
type Judge struct {
	cfg JudgeConfig

	v victim // reset by Watch and Unwatch

	// The judge's own heartbeats (kept across Watch calls).
	inRun     bool          // an ack arrived and no failure since
	runStart  time.Duration // ackedAt of the first ack of the current run
	lastAck   time.Duration // ackedAt of the latest ack
	failed    bool
	failureAt time.Duration // reading of the latest OwnFailure
}

// victim is what a Judge knows of its current victim.
type victim struct {
	watching     bool
	member       string
	incarnation  uint64
	watchAt      time.Duration
	seen         bool          // a heartbeat of the victim was observed since Watch
	seenAt       time.Duration // reading when it was observed
	hbSeq        uint64        // its stream sequence
	fence        uint64        // the subject's last sequence seen, whatever the message: the verdict's fence
	inherited    bool          // an own ack sent at or after watchAt has arrived
	inheritStart time.Duration // ... and its ackedAt
}

// NewJudge returns a judge with no victim. It fails, with an error wrapping
// [ErrInvalidTimings], if cfg does not validate.
func NewJudge(cfg JudgeConfig) (*Judge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Judge{cfg: cfg}, nil
}

// Config returns the judge's configuration.
func (j *Judge) Config() JudgeConfig { return j.cfg }

// Watch starts judging a victim, identified by member ID and incarnation, at
// reading now; it replaces any previous victim and forgets what was seen of
// it. Until [Judge.ObserveVictim] reports one of the victim's heartbeats, the
// victim is inherited: the count starts at the ackedAt of the judge's own
// first acknowledged heartbeat sent at or after now. Call Watch again when the
// ring (as the fold says) gives the judge a different victim.
func (j *Judge) Watch(victimMember string, victimIncarnation uint64, now time.Duration) {
	j.v = victim{watching: true, member: victimMember, incarnation: victimIncarnation, watchAt: now}
}

// Unwatch stops judging: [Judge.Due] reports false until the next
// [Judge.Watch]. The record of the judge's own heartbeats is kept.
func (j *Judge) Unwatch() {
	j.v = victim{}
}

// Victim returns the victim being judged, and false if there is none.
func (j *Judge) Victim() (member string, incarnation uint64, ok bool) {
	return j.v.member, j.v.incarnation, j.v.watching
}

// ObserveVictim records that the victim's heartbeat with stream sequence seq
// was seen at reading now. It restarts the count and moves the verdict's
// fence up to seq. Only a heartbeat of the victim's own incarnation and
// nonce, stored with its fence header, is the victim's heartbeat; anything
// else on the subject goes to [Judge.ObserveOther]. A sequence at or below
// the victim's last heartbeat already seen (a redelivery after the tail was
// recreated) is not news and is ignored, as are sequence 0 and calls while
// nothing is watched.
func (j *Judge) ObserveVictim(seq uint64, now time.Duration) {
	if !j.v.watching || seq == 0 || (j.v.seen && seq <= j.v.hbSeq) {
		return
	}
	if !j.v.seen || now > j.v.seenAt {
		j.v.seenAt = now
	}
	j.v.seen = true
	j.v.hbSeq = seq
	j.v.fence = max(j.v.fence, seq)
}

// ObserveOther records that a message other than the victim's heartbeat
// (junk, a record of another type or version, a copy of an old heartbeat,
// another process's heartbeat) was stored on the victim's subject at
// sequence seq. It moves the verdict's fence up to seq — the verdict is
// fenced on the subject's last sequence, whatever that message holds — and
// leaves the count alone: junk neither keeps a dead victim alive nor blocks
// its verdict.
func (j *Judge) ObserveOther(seq uint64) {
	if !j.v.watching || seq == 0 {
		return
	}
	j.v.fence = max(j.v.fence, seq)
}

// Refence sets the verdict's fence to seq, the subject's last sequence as a
// read found it after a verdict was refused (0: the subject is empty, every
// message's TTL ran out). Unlike the Observe methods it may lower the fence:
// a read is the server's answer, the watch's view may be of expired
// messages. The count is left alone.
func (j *Judge) Refence(seq uint64) {
	if !j.v.watching {
		return
	}
	j.v.fence = seq
}

// OwnAck records that the judge's own heartbeat sent at reading sentAt was
// acknowledged at reading ackedAt. If it is the first acknowledgement, the
// first after an [Judge.OwnFailure], or more than MaxGap after the previous
// acknowledgement, it starts a new gap-free run at ackedAt. An ack that
// arrived before the latest one or before the latest recorded failure is
// stale and ignored.
func (j *Judge) OwnAck(sentAt, ackedAt time.Duration) {
	if j.inRun && ackedAt < j.lastAck {
		return
	}
	if j.failed && ackedAt < j.failureAt {
		return
	}
	if !j.inRun || ackedAt-j.lastAck > j.cfg.MaxGap {
		j.runStart = ackedAt
	}
	j.inRun = true
	j.lastAck = ackedAt
	if j.v.watching && !j.v.inherited && sentAt >= j.v.watchAt {
		j.v.inherited = true
		j.v.inheritStart = ackedAt
	}
}

// OwnFailure records that one of the judge's own heartbeats failed at reading
// now: refused, timed out, or could not be sent. It is a gap: no verdict is
// due until an acknowledgement starts a new run, and the count then restarts
// from that acknowledgement.
func (j *Judge) OwnFailure(now time.Duration) {
	j.inRun = false
	if !j.failed || now > j.failureAt {
		j.failureAt = now
	}
	j.failed = true
}

// DueAt returns the reading at which a verdict becomes due if nothing
// changes meanwhile (no heartbeat of the victim, no failure of the judge's
// own): just past the count's start + Expiry. ok is false while no count
// runs. A driver that checks [Judge.Due] on a timer wakes then too, so that
// the verdict goes at the expiry rather than up to one timer period later.
func (j *Judge) DueAt() (at time.Duration, ok bool) {
	if !j.v.watching {
		return 0, false
	}
	if !j.inRun {
		return 0, false
	}
	start := j.runStart
	switch {
	case j.v.seen:
		start = max(start, j.v.seenAt)
	case j.v.inherited:
		start = max(start, j.v.inheritStart)
	default:
		return 0, false
	}
	return start + j.cfg.Expiry + 1, true
}

// Due reports, at reading now, whether a verdict against the victim is due,
// how long the count has run (span; zero while it has not started), and the
// fence for the verdict: the subject's last sequence the judge saw, whatever
// the message held, or 0 if it saw none (the verdict then lands only on an
// empty subject). Due never changes the judge; the caller appends the verdict
// and, if the fence refuses it, reads the subject and reports what it read
// with [Judge.Refence].
//
// A verdict is due only when span > Expiry (strictly) and the judge's latest
// acknowledgement is at most MaxGap before now with no failure since.
func (j *Judge) Due(now time.Duration) (due bool, span time.Duration, fenceSeq uint64) {
	if !j.v.watching {
		return false, 0, 0
	}
	if !j.inRun {
		return false, 0, j.v.fence
	}
	start := j.runStart
	switch {
	case j.v.seen:
		start = max(start, j.v.seenAt)
	case j.v.inherited:
		start = max(start, j.v.inheritStart)
	default:
		return false, 0, j.v.fence // inherited, and no own ack sent since Watch yet
	}
	span = max(now-start, 0)
	healthy := now-j.lastAck <= j.cfg.MaxGap
	return span > j.cfg.Expiry && healthy, span, j.v.fence
}
