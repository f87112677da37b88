package projection

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti/events"
)

// WatchSubject watches one literal subject of stream — a judge watching its
// victim's heartbeat subject: fn receives the subject's last message, if
// any, then every new one, each decoded into a record (heartbeats and
// verdicts alike; a record that did not decode carries its error). It uses
// an ordered consumer with DeliverLastPerSubject, which loads the last
// message without reading the subject's history.
//
// fn is called from the consumer's goroutine, one call at a time, in stream
// order, never twice for a sequence; it must not block for long. After a
// lost connection the consumer resumes after the last record delivered. The
// watch ends when stop is called (stop is idempotent and does not wait for a
// call in progress), when ctx ends, or when the connection is closed.
func WatchSubject(ctx context.Context, js jetstream.JetStream, stream, subject string, fn func(events.Record)) (stop func(), err error) {
	if subject == "" || strings.ContainsAny(subject, "*> \t") {
		return nil, fmt.Errorf("parti: projection: WatchSubject: %q is not a literal subject", subject)
	}
	if fn == nil {
		return nil, fmt.Errorf("parti: projection: WatchSubject: nil fn")
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{subject},
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		InactiveThreshold: consumerInactive,
	})
	if err != nil {
		return nil, fmt.Errorf("parti: projection: watch %s: %w", subject, err)
	}
	var (
		mu   sync.Mutex
		last uint64
	)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		seq := meta.Sequence.Stream
		if seq <= last {
			return
		}
		last = seq
		var hdr map[string][]string
		if h := m.Headers(); len(h) > 0 {
			hdr = h
		}
		fn(events.NewRecord(seq, meta.Timestamp, m.Subject(), hdr, m.Data()))
	})
	if err != nil {
		return nil, fmt.Errorf("parti: projection: watch %s: %w", subject, err)
	}
	stop = sync.OnceFunc(func() {
		cc.Stop()
		// Stopping leaves the consumer on the server until it has been
		// inactive for consumerInactive; a judge rewatches at every ring
		// change, and a stream holds a limited number of consumers (1,000
		// by default), so a rolling restart of a large group hit it.
		// Delete it, in the background: the caller may be a member's loop.
		deleteInBackground(js, cons, nil)
	})
	if ctx.Done() != nil {
		go func() {
			select {
			case <-ctx.Done():
				stop()
			case <-cc.Closed():
			}
		}()
	}
	return stop, nil
}
