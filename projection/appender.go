package projection

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti/events"
)

// ErrConflict is wrapped by every fenced publish the server refused because
// the subject's last sequence was not the expected one: JetStream error code
// 10071 (wrong last sequence) or 10164 (the same, or a proposal for the
// subject still in flight on a replicated stream). The caller refolds or
// re-reads the subject (LastOnSubject) and decides again. The server's
// *jetstream.APIError stays reachable with errors.As.
var ErrConflict = errors.New("parti: projection: fence conflict")

// JetStream error codes of a refused expected-sequence check.
const (
	codeWrongLastSequence         jetstream.ErrorCode = 10071
	codeWrongLastSequenceConstant jetstream.ErrorCode = 10164
)

// isConflict reports whether err carries a wrong-last-sequence API error.
// It matches by error code, never by text.
func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == codeWrongLastSequence || apiErr.ErrorCode == codeWrongLastSequenceConstant
}

// wrapPublish wraps a publish error, adding ErrConflict for a refused fence.
func wrapPublish(err error, what, subject string) error {
	if isConflict(err) {
		return fmt.Errorf("%w: %s on %s: %w", ErrConflict, what, subject, err)
	}
	return fmt.Errorf("parti: projection: %s on %s: %w", what, subject, err)
}

// defaultTimeout bounds a request whose context has no deadline.
const defaultTimeout = 5 * time.Second

// withDefaultTimeout gives ctx a deadline if it has none.
func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// Appender publishes one group's events: log appends (unfenced, fenced, or
// as one atomic batch), heartbeats and verdicts on heartbeat subjects, and
// snapshot chunks. Every body is events.Encode(Version(), ev).
//
// An Appender is safe for concurrent use. A successful append returns the
// stream sequence the server acknowledged; act on the folded log, never on
// the ack alone (DESIGN rule 3). An error other than ErrConflict or a
// validation error (a publish that timed out, a lost connection) may leave
// the outcome unknown: the event may or may not have landed, and the fold
// will tell.
type Appender struct {
	js       jetstream.JetStream
	subjects events.Subjects
	version  atomic.Uint32

	mu     sync.Mutex
	stream jetstream.Stream
}

// NewAppender returns an Appender for the group whose subjects are given,
// writing at protocol version events.MaxVersion until SetVersion is called.
// The group's stream must exist (Provision) before anything is published.
func NewAppender(js jetstream.JetStream, subjects events.Subjects) *Appender {
	a := &Appender{js: js, subjects: subjects}
	a.version.Store(uint32(events.MaxVersion))
	return a
}

// Subjects returns the group's subject map.
func (a *Appender) Subjects() events.Subjects { return a.subjects }

// StreamName returns the name of the group's stream.
func (a *Appender) StreamName() string { return StreamName(a.subjects.Group) }

// Version returns the protocol version every published envelope carries.
func (a *Appender) Version() uint16 { return uint16(a.version.Load()) }

// SetVersion sets the protocol version of what is published from now on: the
// group's version as set on the log (DESIGN rule 8). It panics on 0 or a
// version newer than events.MaxVersion, which this build cannot write.
func (a *Appender) SetVersion(v uint16) {
	if v == 0 || v > events.MaxVersion {
		panic(fmt.Sprintf("parti: projection: SetVersion(%d): want 1..%d", v, events.MaxVersion))
	}
	a.version.Store(uint32(v))
}

func (a *Appender) encode(ev events.Event) ([]byte, error) {
	b, err := events.Encode(a.Version(), ev)
	if err != nil {
		return nil, fmt.Errorf("parti: projection: %w", err)
	}
	return b, nil
}

func (a *Appender) publish(ctx context.Context, subject string, ev events.Event, what string, opts ...jetstream.PublishOpt) (uint64, error) {
	body, err := a.encode(ev)
	if err != nil {
		return 0, err
	}
	return a.publishBody(ctx, subject, body, what, opts...)
}

func (a *Appender) publishBody(ctx context.Context, subject string, body []byte, what string, opts ...jetstream.PublishOpt) (uint64, error) {
	ack, err := a.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}, opts...)
	if err != nil {
		return 0, wrapPublish(err, what, subject)
	}
	return ack.Sequence, nil
}

// Append appends ev to the log subject without a fence: for a member's own
// events (claims, leaves, releases, removals), which the fold validates at
// whatever position they land. It returns the stream sequence.
func (a *Appender) Append(ctx context.Context, ev events.Event) (uint64, error) {
	return a.publish(ctx, a.subjects.Log(), ev, "append")
}

// AppendFenced appends ev to the log subject only if the log subject's last
// sequence is still expectLastLogSeq (0: the log is empty): the leader's
// decisions and declarations land only on the exact log they were computed
// from. A refused fence returns an error wrapping ErrConflict.
func (a *Appender) AppendFenced(ctx context.Context, ev events.Event, expectLastLogSeq uint64) (uint64, error) {
	return a.publish(ctx, a.subjects.Log(), ev, "fenced append",
		jetstream.WithExpectLastSequencePerSubject(expectLastLogSeq))
}

// AppendBatch appends evs to the log subject as one atomic batch: all of them
// land, contiguously and in order, or none does. The batch is fenced on its
// first message (the log subject's last sequence must be expectLastLogSeq);
// the others cannot carry a fence of their own on the same subject. It
// returns the sequence of the last event. A batch holds 1 to MaxBatch events;
// a single event is published with AppendFenced. A refused fence returns an
// error wrapping ErrConflict.
func (a *Appender) AppendBatch(ctx context.Context, evs []events.Event, expectLastLogSeq uint64) (lastSeq uint64, err error) {
	switch {
	case len(evs) == 0:
		return 0, fmt.Errorf("parti: projection: AppendBatch: no events")
	case len(evs) == 1:
		return a.AppendFenced(ctx, evs[0], expectLastLogSeq)
	case len(evs) > MaxBatch:
		return 0, fmt.Errorf("parti: projection: AppendBatch: %d events, at most %d fit one atomic batch", len(evs), MaxBatch)
	}
	bodies := make([][]byte, len(evs))
	for i, ev := range evs {
		if bodies[i], err = a.encode(ev); err != nil {
			return 0, fmt.Errorf("parti: projection: AppendBatch: event %d: %w", i, err)
		}
	}
	fence := expectLastLogSeq
	return a.publishBatch(ctx, a.subjects.Log(), bodies, &fence, 0)
}

// ttlSeconds rounds ttl up to whole seconds, at least one: the unit and the
// minimum of JetStream's per-message TTL.
func ttlSeconds(ttl time.Duration) time.Duration {
	s := (ttl + time.Second - 1).Truncate(time.Second)
	return max(s, time.Second)
}

func (a *Appender) checkHeartbeatSubject(subject, what string) error {
	if kind, _, _ := a.subjects.Parse(subject); kind != events.SubjectHeartbeat {
		return fmt.Errorf("parti: projection: %s: %q is not a heartbeat subject of group %s", what, subject, a.subjects.Group)
	}
	return nil
}

// Heartbeat appends ev (a heartbeat) to the heartbeat subject, fenced on
// expectLast, the sequence of the previous message on that subject (0 when
// it is empty, also when every earlier heartbeat expired), with a
// per-message TTL of ttl, rounded up to whole seconds and at least 1 s. The
// TTL bounds heartbeat history only; it is never part of a correctness
// argument. A refused fence (someone else wrote on the subject: a verdict, or
// an older process of this incarnation) returns an error wrapping
// ErrConflict; read the subject with LastOnSubject to see what is there.
func (a *Appender) Heartbeat(ctx context.Context, subject string, ev events.Event, expectLast uint64, ttl time.Duration) (uint64, error) {
	if err := a.checkHeartbeatSubject(subject, "Heartbeat"); err != nil {
		return 0, err
	}
	if ttl <= 0 {
		return 0, fmt.Errorf("parti: projection: Heartbeat: ttl must be > 0, got %v", ttl)
	}
	return a.publish(ctx, subject, ev, "heartbeat",
		jetstream.WithExpectLastSequencePerSubject(expectLast),
		jetstream.WithMsgTTL(ttlSeconds(ttl)))
}

// PublishVerdict appends a judge's verdict on the victim's heartbeat subject,
// fenced on expectLast, the sequence of the victim's heartbeat the judge last
// saw, with no TTL: the verdict stays. A refused fence (the victim
// heartbeated meanwhile, or another judge was first) returns an error
// wrapping ErrConflict.
func (a *Appender) PublishVerdict(ctx context.Context, subject string, verdict *events.ExpiryVerdict, expectLast uint64) (uint64, error) {
	if err := a.checkHeartbeatSubject(subject, "PublishVerdict"); err != nil {
		return 0, err
	}
	if verdict == nil {
		return 0, fmt.Errorf("parti: projection: PublishVerdict: nil verdict")
	}
	return a.publish(ctx, subject, verdict, "verdict",
		jetstream.WithExpectLastSequencePerSubject(expectLast))
}

// streamHandle returns the group's stream, looked up once.
func (a *Appender) streamHandle(ctx context.Context) (jetstream.Stream, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stream != nil {
		return a.stream, nil
	}
	st, err := a.js.Stream(ctx, a.StreamName())
	if err != nil {
		return nil, fmt.Errorf("parti: projection: stream %s: %w", a.StreamName(), err)
	}
	a.stream = st
	return st, nil
}

// LastOnSubject returns the last message on subject (a literal subject of
// the group), decoded into a record. found is false, with a nil error, when
// the subject holds no message. The read goes to the stream leader.
func (a *Appender) LastOnSubject(ctx context.Context, subject string) (rec events.Record, found bool, err error) {
	st, err := a.streamHandle(ctx)
	if err != nil {
		return events.Record{}, false, err
	}
	return lastOnSubject(ctx, st, subject)
}

// lastOnSubject reads subject's last message from st.
func lastOnSubject(ctx context.Context, st jetstream.Stream, subject string) (events.Record, bool, error) {
	m, err := st.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return events.Record{}, false, nil
	}
	if err != nil {
		return events.Record{}, false, fmt.Errorf("parti: projection: last message on %s: %w", subject, err)
	}
	return rawRecord(m), true, nil
}

// rawRecord decodes a message read from the stream.
func rawRecord(m *jetstream.RawStreamMsg) events.Record {
	var h map[string][]string
	if len(m.Header) > 0 {
		h = m.Header
	}
	return events.NewRecord(m.Sequence, m.Time, m.Subject, h, m.Data)
}

// seqString formats a sequence for a header.
func seqString(seq uint64) string { return strconv.FormatUint(seq, 10) }
