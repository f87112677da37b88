package sim

import (
	"time"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/liveness"
)

// stream models the JetStream stream of one group, as far as parti relies on
// it: one global sequence; the last sequence per subject, which fenced appends
// compare against (a subject whose messages all expired compares against 0);
// atomic batches fenced on their first message; per-message TTLs measured in
// server time; server timestamps that step; and stalls (a stream-leader
// election) during which nothing is appended.
//
// The stream only stores and answers; the world decides when requests arrive,
// whether they are held through a stall or lost, and when answers reach the
// members.
type stream struct {
	seq  uint64
	skew time.Duration // server time = real time + skew

	// The log subject: every record ever appended, in order, with the real
	// time it landed (tails deliver records with a lag after it).
	log       []events.Record
	logLanded []time.Duration
	logSeqs   []uint64

	// Heartbeat subjects: the messages not yet expired, ascending sequence.
	hb map[string]*hbSubject

	ttl time.Duration // heartbeats' TTL (verdicts have none)

	stallUntil time.Duration // real time; the stream accepts nothing before it
}

// hbSubject is one incarnation's heartbeat subject.
type hbSubject struct {
	msgs []*hbMessage
}

// hbMessage is a heartbeat or a verdict.
type hbMessage struct {
	seq      uint64
	subject  string
	ts       time.Duration // server time it was stored at
	sent     time.Duration // a heartbeat's sender's reading when it sent it
	expireAt time.Duration // server time; 0 for never
	hb       *events.Heartbeat
	verdict  *events.ExpiryVerdict
	// junk is set for anything else an adversary stored (garbage, another
	// type, an unknown version); raw for a message stored without a fence
	// (an adversary's copy of an old heartbeat or verdict).
	junk bool
	raw  bool
}

// describe is the message as a driver reads it: what a member's runtime
// makes of a stored message (see the root package's heartbeatMessage).
func (m *hbMessage) describe() liveness.LastMessage {
	switch {
	case m.junk || (m.verdict == nil && m.hb == nil):
		return liveness.LastMessage{Seq: m.seq, Garbage: true}
	case m.verdict != nil:
		return liveness.LastMessage{Seq: m.seq, IsVerdict: true, VerdictMember: m.verdict.Member,
			VerdictIncarnation: m.verdict.Incarnation, VerdictForced: m.verdict.Forced}
	default:
		return liveness.LastMessage{Seq: m.seq, Nonce: m.hb.Nonce, Fenced: !m.raw}
	}
}

func newStream(ttl time.Duration) *stream {
	return &stream{hb: map[string]*hbSubject{}, ttl: ttl}
}

// serverTime is the server's clock at real time t.
func (s *stream) serverTime(t time.Duration) time.Duration { return t + s.skew }

// serverEpoch is the wall-clock instant that server time 0 stands for in
// timestamps handed out (records, and the stamps of heartbeat messages).
var serverEpoch = time.Unix(1_800_000_000, 0)

// stamp is server time st as a timestamp in a message's metadata.
func stamp(st time.Duration) time.Time { return serverEpoch.Add(st) }

// stalled reports whether the stream accepts nothing at real time t.
func (s *stream) stalled(t time.Duration) bool { return t < s.stallUntil }

// lastLogSeq is the log subject's last sequence (log messages have no TTL).
func (s *stream) lastLogSeq() uint64 {
	if n := len(s.logSeqs); n > 0 {
		return s.logSeqs[n-1]
	}
	return 0
}

// subject returns the live messages of a heartbeat subject at real time t,
// dropping the expired ones (TTLs run in server time, whatever the stream's
// leadership).
func (s *stream) subject(name string, t time.Duration) *hbSubject {
	sub := s.hb[name]
	if sub == nil {
		sub = &hbSubject{}
		s.hb[name] = sub
	}
	now := s.serverTime(t)
	k := 0
	for _, m := range sub.msgs {
		if m.expireAt != 0 && m.expireAt <= now {
			continue
		}
		sub.msgs[k] = m
		k++
	}
	clear(sub.msgs[k:])
	sub.msgs = sub.msgs[:k]
	return sub
}

// last returns the last live message of a heartbeat subject, or nil.
func (s *stream) last(name string, t time.Duration) *hbMessage {
	sub := s.subject(name, t)
	if n := len(sub.msgs); n > 0 {
		return sub.msgs[n-1]
	}
	return nil
}

// lastMessage describes a heartbeat subject's last message the way a member
// reads it after a refused or timed-out heartbeat.
func (s *stream) lastMessage(name string, t time.Duration) liveness.LastMessage {
	m := s.last(name, t)
	if m == nil {
		return liveness.LastMessage{Empty: true}
	}
	return m.describe()
}

// appendLog appends evs to the log subject as one atomic batch, fenced (when
// fenced) on the log subject's last sequence. It returns the records stored
// (nil on a conflict).
func (s *stream) appendLog(subject string, evs []events.Event, fenced bool, fence uint64, t time.Duration) []events.Record {
	if fenced && s.lastLogSeq() != fence {
		return nil
	}
	ts := stamp(s.serverTime(t))
	out := make([]events.Record, 0, len(evs))
	for _, ev := range evs {
		s.seq++
		// Every record goes through the wire encoding, as on the real stream.
		body := events.MustEncode(events.MaxVersion, ev)
		r := events.NewRecord(s.seq, ts, subject, nil, body)
		s.log = append(s.log, r)
		s.logLanded = append(s.logLanded, t)
		s.logSeqs = append(s.logSeqs, s.seq)
		out = append(out, r)
	}
	return out
}

// appendHB appends a heartbeat (with the TTL) or a verdict (without) on a
// heartbeat subject, fenced on the subject's last sequence when fenced. sent
// is a heartbeat's sender's reading when it sent it: no heartbeat body
// carries it, the message keeps it as a header a broken implementation
// would add, for the judges broken on purpose to date heartbeats by the
// victim's clock. It returns nil on a conflict.
func (s *stream) appendHB(name string, hb *events.Heartbeat, v *events.ExpiryVerdict, sent time.Duration, fenced bool, fence uint64, t time.Duration) *hbMessage {
	sub := s.subject(name, t)
	var last uint64
	if n := len(sub.msgs); n > 0 {
		last = sub.msgs[n-1].seq
	}
	if fenced && last != fence {
		return nil
	}
	s.seq++
	m := &hbMessage{seq: s.seq, subject: name, ts: s.serverTime(t), sent: sent, hb: hb, verdict: v}
	if hb != nil && s.ttl > 0 {
		m.expireAt = m.ts + s.ttl
	}
	sub.msgs = append(sub.msgs, m)
	return m
}

// readAfter is what a member's driver reads of its own subject after a
// refused heartbeat fenced on fence: the first verdict naming the subject's
// incarnation stored after fence, if any (junk on top must not hide it),
// else the last message.
func (s *stream) readAfter(name string, fence uint64, t time.Duration) liveness.LastMessage {
	sub := s.subject(name, t)
	for _, m := range sub.msgs {
		if m.seq > fence && m.verdict != nil && name == verdictSubject(name, m.verdict) {
			return m.describe()
		}
	}
	return s.lastMessage(name, t)
}

// verdictSubject is the heartbeat subject a verdict names, in the form of
// name (same prefix and group).
func verdictSubject(name string, v *events.ExpiryVerdict) string {
	subj := events.Subjects{Group: "g", Prefix: "parti"}
	return subj.Heartbeat(v.Member, v.Incarnation)
}
