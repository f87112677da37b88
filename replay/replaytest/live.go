package replaytest

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/projection"
)

// AppenderEmitter emits into a live group stream the way members do, with
// a projection.Appender: log events with Append, or AppendFenced when the
// header carries a fence; heartbeats with Heartbeat (fenced, with a TTL);
// verdicts with PublishVerdict. A body that does not decode (garbage) is
// published as is.
type AppenderEmitter struct {
	Ctx context.Context
	App *projection.Appender
	JS  jetstream.JetStream
	// TTL is the heartbeats' TTL (default 5 minutes).
	TTL time.Duration
}

// Emit implements Emitter.
func (e *AppenderEmitter) Emit(subject string, header map[string][]string, body []byte) (uint64, error) {
	ev, _, err := events.Decode(body)
	if err != nil {
		ack, err := e.JS.PublishMsg(e.Ctx, &nats.Msg{Subject: subject, Header: nats.Header(header), Data: body})
		if err != nil {
			return 0, err
		}
		return ack.Sequence, nil
	}
	var fence uint64
	fenced := false
	if v := header[HeaderExpectedLastSubjectSeq]; len(v) == 1 {
		if fence, err = strconv.ParseUint(v[0], 10, 64); err != nil {
			return 0, err
		}
		fenced = true
	}
	kind, _, _ := e.App.Subjects().Parse(subject)
	ttl := e.TTL
	if ttl == 0 {
		ttl = 5 * time.Minute
	}
	switch ev := ev.(type) {
	case *events.Heartbeat:
		return e.App.Heartbeat(e.Ctx, subject, ev, fence, ttl)
	case *events.ExpiryVerdict:
		return e.App.PublishVerdict(e.Ctx, subject, ev, fence)
	}
	if kind != events.SubjectLog {
		return 0, fmt.Errorf("replaytest: %T on %s", ev, subject)
	}
	if fenced {
		return e.App.AppendFenced(e.Ctx, ev, fence)
	}
	return e.App.Append(e.Ctx, ev)
}
