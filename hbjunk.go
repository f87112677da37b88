package parti

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/liveness"
)

// fenceHeader is the header a fenced append carries
// (jetstream.WithExpectLastSequencePerSubject). The server stores it with
// the message and refuses the append unless its value is the subject's last
// sequence, so a stored message that carries it was appended fenced; a raw
// copy of an old heartbeat published again does not carry it (or is refused).
const fenceHeader = "Nats-Expected-Last-Subject-Sequence"

// heartbeatMessage describes a record read from a heartbeat subject for the
// pure member core: a verdict (returned too) or a heartbeat of a version this
// build speaks, whether it was appended fenced, or garbage (undecodable, an
// unknown version or type). A well-formed event of another type is neither a
// heartbeat nor a verdict nor garbage: the core treats it as junk.
func heartbeatMessage(rec events.Record) (liveness.LastMessage, *events.ExpiryVerdict) {
	msg := liveness.LastMessage{Seq: rec.Seq, Fenced: fencedRecord(rec.Header)}
	switch e := rec.Event.(type) {
	case nil:
		msg.Garbage = true
	case *events.ExpiryVerdict:
		msg.IsVerdict, msg.VerdictMember, msg.VerdictIncarnation, msg.VerdictForced = true, e.Member, e.Incarnation, e.Forced
		if e.Member == "" {
			// A verdict that names nobody must not count as naming the
			// reader (see liveness.LastMessage.IsVerdict): it is junk.
			return liveness.LastMessage{Seq: rec.Seq, Garbage: true}, nil
		}
		return msg, e
	case *events.Heartbeat:
		msg.Nonce = e.Nonce
	}
	return msg, nil
}

// fencedRecord reports whether a stored message carries the fence header
// with a valid sequence.
func fencedRecord(h map[string][]string) bool {
	for k, vs := range h {
		if !strings.EqualFold(k, fenceHeader) || len(vs) == 0 {
			continue
		}
		_, err := strconv.ParseUint(vs[0], 10, 64)
		return err == nil
	}
	return false
}

// junkCounter counts the junk a member met on heartbeat subjects (its own
// and the one it judges) and logs it: the first few at warning level, then
// one warning per power of two, so that a flood of junk is visible without
// drowning the log.
type junkCounter struct{ n atomic.Uint64 }

// add counts one message of junk and reports whether to log it as a warning.
func (c *junkCounter) add() (n uint64, warn bool) {
	n = c.n.Add(1)
	return n, n <= 8 || n&(n-1) == 0
}

// JunkSeen returns how many messages this member found on its own or its
// judged member's heartbeat subject that were neither heartbeats of the
// incarnation the subject names (appended with its fence) nor a verdict
// against that incarnation: garbage, records of another type or an unknown
// protocol version, raw copies of old records, other processes' heartbeats.
// None of them keeps a dead member live or ends a live one; each is logged.
func (m *Member) JunkSeen() uint64 { return m.junk.n.Load() }

// noteJunk logs one message of junk found on subject.
func (m *Member) noteJunk(subject string, msg liveness.LastMessage, why string) {
	n, warn := m.junk.add()
	log := m.log.Debug
	if warn {
		log = m.log.Warn
	}
	log("junk on a heartbeat subject: fenced over, ignored for liveness",
		"subject", subject, "seq", msg.Seq, "why", why, "junk_total", n)
}

// junkReason names what made a message junk, for the log.
func junkReason(msg liveness.LastMessage) string {
	switch {
	case msg.Garbage:
		return "undecodable or of an unknown version"
	case msg.IsVerdict:
		return "a verdict naming another incarnation"
	case msg.Nonce == "":
		return "an event that is neither a heartbeat nor a verdict"
	case !msg.Fenced:
		return "a heartbeat appended without its fence (a copy)"
	default:
		return "another process's heartbeat"
	}
}

// maxScan bounds how many messages verdictAfter reads.
const maxScan = 1000

// verdictAfter looks for a verdict naming incarnation inc of member among the
// messages of subject stored after fence, up to last: junk stored on top of
// a verdict must not hide it from its victim, which would adopt the junk and
// renew its lease while the fold removes it.
func (m *Member) verdictAfter(ctx context.Context, subject, member string, inc, fence, last uint64) (liveness.LastMessage, bool) {
	if fence == 0 || last <= fence+1 {
		return liveness.LastMessage{}, false
	}
	seq := fence + 1
	for range maxScan {
		raw, err := m.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if err != nil || raw.Sequence >= last {
			return liveness.LastMessage{}, false
		}
		msg, v := heartbeatMessage(events.NewRecord(raw.Sequence, raw.Time, raw.Subject, raw.Header, raw.Data))
		if v != nil && v.Member == member && v.Incarnation == inc {
			return msg, true
		}
		seq = raw.Sequence + 1
	}
	return liveness.LastMessage{}, false
}
