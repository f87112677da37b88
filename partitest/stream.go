package partitest

import (
	"time"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/liveness"
)

// epoch is the server time of simulated reading 0: records carry server
// timestamps for display only, and these make every run print the same.
var epoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// stream is the in-memory stand-in for the group's JetStream stream, as far
// as parti relies on it: one global sequence, the last sequence per subject
// (which fenced appends compare against), atomic batches fenced on their first
// message. Heartbeats have no TTL here: nothing in the kit lives long enough
// for one to matter.
type stream struct {
	subj events.Subjects
	seq  uint64
	log  []events.Record
	hb   map[string]hbMessage // heartbeat subjects: their last message
}

// hbMessage is the last message of a heartbeat subject: a heartbeat or a
// verdict.
type hbMessage struct {
	seq     uint64
	hb      *events.Heartbeat
	verdict *events.ExpiryVerdict
}

func newStream(group string) *stream {
	subj, err := events.NewSubjects(group)
	if err != nil {
		panic(err)
	}
	return &stream{subj: subj, hb: map[string]hbMessage{}}
}

// lastLogSeq is the log subject's last sequence (0 while it is empty).
func (s *stream) lastLogSeq() uint64 {
	if n := len(s.log); n > 0 {
		return s.log[n-1].Seq
	}
	return 0
}

// appendLog appends evs to the log subject as one atomic batch, fenced (when
// fenced) on the log subject's last sequence, and returns the records stored,
// or nil on a fence conflict. Every event goes through the wire encoding, as
// on the real stream.
func (s *stream) appendLog(evs []events.Event, fenced bool, fence uint64, now time.Duration) []events.Record {
	if fenced && s.lastLogSeq() != fence {
		return nil
	}
	out := make([]events.Record, 0, len(evs))
	for _, ev := range evs {
		s.seq++
		body := events.MustEncode(events.MaxVersion, ev)
		out = append(out, events.NewRecord(s.seq, epoch.Add(now), s.subj.Log(), nil, body))
	}
	s.log = append(s.log, out...)
	return out
}

// appendHB appends a heartbeat or a verdict on a heartbeat subject, fenced
// (when fenced) on the subject's last sequence. ok is false on a conflict.
func (s *stream) appendHB(subject string, m hbMessage, fenced bool, fence uint64) (seq uint64, ok bool) {
	if fenced && s.hb[subject].seq != fence {
		return 0, false
	}
	s.seq++
	m.seq = s.seq
	s.hb[subject] = m
	return m.seq, true
}

// lastMessage describes a heartbeat subject's last message the way a member
// reads it after a refused heartbeat.
func (s *stream) lastMessage(subject string) liveness.LastMessage {
	m, ok := s.hb[subject]
	switch {
	case !ok:
		return liveness.LastMessage{Empty: true}
	case m.verdict != nil:
		return liveness.LastMessage{Seq: m.seq, IsVerdict: true}
	default:
		return liveness.LastMessage{Seq: m.seq, Nonce: m.hb.Nonce}
	}
}
