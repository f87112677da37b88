package liveness

import (
	"fmt"
	"time"
)

// Heartbeater is the bookkeeping of one incarnation's fenced heartbeats
// (DESIGN rule 2). Each heartbeat carries the process's nonce and is appended
// to the incarnation's own heartbeat subject with
// WithExpectLastSequencePerSubject([Heartbeater.Prev]); its ack is reported
// with [Heartbeater.Acked]. When a heartbeat is refused (JetStream error
// 10071), reports a proposal in flight (10164) or times out, the caller reads
// the subject's last message and asks [Heartbeater.Resolve] what it means.
//
// A Heartbeater starts fencing on 0: a new incarnation's subject is empty.
// After an outcome that stops the member ([Outcome.Stop]) the Heartbeater is
// finished ([Heartbeater.Stopped]); the member rejoins as a new incarnation
// with a new Heartbeater. A Heartbeater is not safe for concurrent use.
type Heartbeater struct {
	nonce   string
	prev    uint64
	stopped bool

	// The incarnation the heartbeats are for (see Bind): only a verdict
	// naming it ends the incarnation.
	bound  bool
	member string
	inc    uint64
}

// NewHeartbeater returns the bookkeeping for an incarnation whose heartbeats
// carry nonce, the random per-process nonce its claim was granted with. It
// panics if nonce is empty: an empty nonce would adopt any message without
// one.
func NewHeartbeater(nonce string) *Heartbeater {
	if nonce == "" {
		panic("liveness: NewHeartbeater: empty nonce")
	}
	return &Heartbeater{nonce: nonce}
}

// Bind names the incarnation the heartbeats are for, once its claim was
// granted. From then on only a verdict naming this member and incarnation
// ends it ([Expired]); a verdict naming anyone else on its subject (an old
// verdict copied there by a confused process) is junk, fenced over like any
// other. Before Bind every verdict counts.
func (h *Heartbeater) Bind(member string, inc uint64) {
	h.bound, h.member, h.inc = true, member, inc
}

// Nonce returns the nonce the heartbeats carry.
func (h *Heartbeater) Nonce() string { return h.nonce }

// Prev returns the sequence to fence the next heartbeat on: the stream
// sequence of this incarnation's last heartbeat, or 0 if the subject is (or
// is believed to be) empty.
func (h *Heartbeater) Prev() uint64 { return h.prev }

// Acked records that a heartbeat was acknowledged at stream sequence seq. The
// fence only moves forward: a sequence at or below Prev (a duplicate or stale
// ack) is ignored, as is any ack after the Heartbeater stopped.
func (h *Heartbeater) Acked(seq uint64) {
	if h.stopped || seq <= h.prev {
		return
	}
	h.prev = seq
}

// Stopped reports whether a [Heartbeater.Resolve] outcome told the member to
// stop.
func (h *Heartbeater) Stopped() bool { return h.stopped }

// LastMessage describes one message on a heartbeat subject: the last one,
// as read after a heartbeat was refused, in flight or timed out, or after a
// judge's verdict was refused; or one a judge's watch delivered.
type LastMessage struct {
	// Empty is true when the subject holds no message: every heartbeat's TTL
	// ran out (possible after a long outage; TTLs keep running while the
	// stream has no leader). The other fields are then ignored.
	Empty bool
	// Seq is the message's stream sequence.
	Seq uint64
	// IsVerdict is true when the message is an expiry verdict of a version
	// the reader speaks; VerdictMember and VerdictIncarnation are the
	// incarnation it names. A driver that leaves VerdictMember empty makes
	// the verdict count as naming the reader's own incarnation (the
	// behaviour before verdicts were checked).
	IsVerdict          bool
	VerdictMember      string
	VerdictIncarnation uint64
	// VerdictForced is the verdict's Forced: the log sequence of the
	// operator's force-expire it carries out (0 for a judge's verdict).
	VerdictForced uint64
	// Nonce is the nonce a heartbeat (of a version the reader speaks)
	// carries; empty for anything else.
	Nonce string
	// Fenced is true when the server stored the message with the
	// expected-last-subject-sequence header (Nats-Expected-Last-Subject-
	// Sequence) of a fenced append, equal to the subject's previous sequence
	// where the reader knows it. A heartbeat without it (a raw copy of an old
	// one published again) is no evidence that its sender is alive.
	Fenced bool
	// Garbage is true when the message does not decode, or is of a version
	// the reader does not speak: someone published junk on the subject.
	Garbage bool
}

// NamesVerdict reports whether the message is a verdict against incarnation
// inc of member (an unnamed verdict, see IsVerdict, counts).
func (l LastMessage) NamesVerdict(member string, inc uint64) bool {
	if !l.IsVerdict {
		return false
	}
	return l.VerdictMember == "" || (l.VerdictMember == member && l.VerdictIncarnation == inc)
}

// OutcomeKind classifies what [Heartbeater.Resolve] found.
type OutcomeKind uint8

const (
	// Expired: the last message is a verdict naming this incarnation. The
	// incarnation was expired: the member stops acting and rejoins as a new
	// incarnation.
	Expired OutcomeKind = iota + 1
	// Adopt: the last message is anything but an empty subject or a verdict
	// naming this incarnation: this process's own heartbeat (same nonce)
	// that landed although its ack was lost or refused, or junk (garbage, a
	// record of an unknown version, an event of another type, a verdict
	// naming another incarnation, another process's heartbeat, an old
	// heartbeat copied there). Its sequence becomes the fence and the member
	// heartbeats again at once: nothing another process publishes on the
	// subject ends the incarnation or costs it its lease.
	Adopt
	// FenceZero: the subject is empty (the heartbeats' TTL ran out during an
	// outage). The next heartbeat fences on 0.
	FenceZero
)

// String returns the kind's name.
func (k OutcomeKind) String() string {
	switch k {
	case Expired:
		return "expired"
	case Adopt:
		return "adopt"
	case FenceZero:
		return "fence-zero"
	default:
		return fmt.Sprintf("OutcomeKind(%d)", uint8(k))
	}
}

// Outcome is the result of [Heartbeater.Resolve].
type Outcome struct {
	Kind OutcomeKind
	// Seq is the sequence of the message resolved against: the verdict's for
	// Expired (a removal appended to the log names it), the adopted
	// message's for Adopt; 0 for FenceZero.
	Seq uint64
	// Junk is true for an Adopt of anything but this process's own
	// heartbeat: the driver logs and counts it.
	Junk bool
}

// Stop reports whether the member must stop acting (revoke its lease) and
// rejoin as a new incarnation: true for Expired only.
func (o Outcome) Stop() bool { return o.Kind == Expired }

// String formats the outcome, e.g. "adopt(42)".
func (o Outcome) String() string {
	if o.Kind == FenceZero {
		return o.Kind.String()
	}
	return fmt.Sprintf("%v(%d)", o.Kind, o.Seq)
}

// Resolve decides, from the subject's last message, what a refused (10071),
// in-flight (10164) or timed-out heartbeat means, and updates the fence:
//
//	Empty                              → FenceZero: Prev becomes 0
//	a verdict naming this incarnation  → Expired:   stop (Stopped becomes true)
//	anything else                      → Adopt:     Prev becomes last.Seq
//
// Anything else is this process's own heartbeat or junk: another process's
// heartbeat, a verdict naming another incarnation (see [Heartbeater.Bind]), an
// event of another type, garbage. None of them is evidence that this
// incarnation was expired; the caller heartbeats again at once on the
// adopted fence, so junk costs it one round trip, not its lease.
//
// Adopt sets Prev to last.Seq even if it is below the current Prev (the stream
// lost acknowledged writes, DESIGN rule 9): the fence must match the server.
// Once stopped, Resolve still classifies but never un-stops.
func (h *Heartbeater) Resolve(last LastMessage) Outcome {
	var out Outcome
	switch {
	case last.Empty:
		out = Outcome{Kind: FenceZero}
	case last.IsVerdict && (!h.bound || last.NamesVerdict(h.member, h.inc)):
		out = Outcome{Kind: Expired, Seq: last.Seq}
	default:
		out = Outcome{Kind: Adopt, Seq: last.Seq, Junk: last.Nonce != h.nonce || last.Garbage || last.IsVerdict}
	}
	if h.stopped {
		return out
	}
	switch out.Kind {
	case FenceZero:
		h.prev = 0
	case Adopt:
		h.prev = last.Seq
	default:
		h.stopped = true
	}
	return out
}

// MayHeartbeat reports whether a member may send its next heartbeat at
// reading now: "a member heartbeats only while its fold has caught up, within
// the expiry, with the newest log sequence it knows of" (DESIGN rule 2).
// Precisely, it is true iff
//
//	appliedSeq ≥ newestKnownSeq   or   now − newestKnownAt < expiry
//
// where appliedSeq is the last log sequence the member's fold applied,
// newestKnownSeq a log sequence the member knows exists (from the tail, the
// stream info, or an ack of its own append) and newestKnownAt the reading when
// it first learned of it. A member whose fold is stuck or cut off from the log
// therefore stops heartbeating within the expiry, is expired by its judge, and
// its partitions move, instead of acting on a stale view.
//
// The caller must keep newestKnownAt at the time the sequence was FIRST
// learned; refreshing it whenever a newer sequence arrives would let a fold
// that lags steadily behind a busy log heartbeat forever. [CatchUp] does the
// bookkeeping: it passes the oldest known sequence not yet applied, which
// makes the rule "every sequence known for at least the expiry is applied".
func MayHeartbeat(appliedSeq, newestKnownSeq uint64, newestKnownAt, now, expiry time.Duration) bool {
	return appliedSeq >= newestKnownSeq || now-newestKnownAt < expiry
}

// maxCatchUpMarks bounds the memory of a CatchUp.
const maxCatchUpMarks = 64

// CatchUp tracks which known log sequences the member's fold has not applied
// yet, and since when they are known, for [MayHeartbeat]. The zero value is
// ready to use (nothing known, nothing applied). It keeps at most 64 marks;
// beyond that, newly learned sequences are merged into the newest mark, which
// keeps that mark's earlier reading: the member may then stop heartbeating
// sooner than necessary, never later. A CatchUp is not safe for concurrent
// use.
type CatchUp struct {
	applied uint64
	marks   []catchUpMark // strictly increasing seq, non-decreasing at
}

type catchUpMark struct {
	seq uint64
	at  time.Duration
}

// Learned records that log sequence seq was known to exist at reading at. A
// sequence at or below one already applied or already known is ignored.
func (c *CatchUp) Learned(seq uint64, at time.Duration) {
	if seq <= c.applied {
		return
	}
	if n := len(c.marks); n > 0 {
		last := &c.marks[n-1]
		if seq <= last.seq {
			return
		}
		if n >= maxCatchUpMarks {
			last.seq = seq // keep last.at: conservative
			return
		}
		at = max(at, last.at)
	}
	c.marks = append(c.marks, catchUpMark{seq: seq, at: at})
}

// Applied records that the fold applied every log sequence up to seq.
func (c *CatchUp) Applied(seq uint64) {
	if seq <= c.applied {
		return
	}
	c.applied = seq
	i := 0
	for i < len(c.marks) && c.marks[i].seq <= seq {
		i++
	}
	if i > 0 {
		c.marks = append(c.marks[:0], c.marks[i:]...)
	}
}

// AppliedSeq returns the last sequence passed to [CatchUp.Applied].
func (c *CatchUp) AppliedSeq() uint64 { return c.applied }

// Behind returns the oldest known sequence the fold has not applied and the
// reading when it was learned; ok is false when the fold has caught up with
// everything known.
func (c *CatchUp) Behind() (seq uint64, since time.Duration, ok bool) {
	if len(c.marks) == 0 {
		return 0, 0, false
	}
	return c.marks[0].seq, c.marks[0].at, true
}

// MayHeartbeat applies [MayHeartbeat] to the oldest known sequence not yet
// applied: true iff every sequence learned at least expiry before now has been
// applied.
func (c *CatchUp) MayHeartbeat(now, expiry time.Duration) bool {
	seq, since, ok := c.Behind()
	if !ok {
		return true
	}
	return MayHeartbeat(c.applied, seq, since, now, expiry)
}
