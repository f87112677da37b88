package projection

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MaxBatch is the most messages one atomic batch may hold: the server's
// default limit (its jetstream max_batch_size option can only lower it).
const MaxBatch = 1000

// The headers of JetStream's atomic batch publish (nats-server 2.12+,
// server/stream.go: JSBatchId, JSBatchSeq, JSBatchCommit). nats.go 1.55 has
// no client for it; this file speaks the protocol on core NATS:
//
//   - every message of a batch carries Nats-Batch-Id (the same unique ID, at
//     most 64 characters) and Nats-Batch-Sequence (1, 2, ... without gaps);
//   - the last one also carries Nats-Batch-Commit: 1;
//   - the server stages each message; a staged message published with a
//     reply subject gets an empty reply, a refused one a JSON error (a
//     message after a refused or missing one gets "batch is incomplete",
//     10176);
//   - on the commit the server runs every message's checks (expected
//     sequences, TTLs, limits) against the stream as staged so far and
//     stores all or none; the commit's reply is a pub ack carrying the last
//     message's sequence plus "batch" (the ID) and "count", or the error
//     that refused the batch (10071/10164 for a refused fence);
//   - a per-subject expected-sequence check on a subject already written
//     earlier in the same batch is refused (10164): only the first message
//     on a subject can be fenced;
//   - Nats-Expected-Last-Msg-Id is not supported in a batch (10177);
//   - a batch that sees no new message for 10 s (max_batch_timeout) is
//     abandoned, as is one that exceeds 1,000 messages (10199); at most 50
//     batches per stream (1,000 per server) may be open at once (10210);
//   - the stream must allow atomic publish (10174).
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
	hdrStatus      = "Status"
)

// batchAck is the reply to a batch message: empty for a staged message, a
// pub ack with the batch ID and count for the commit, an error otherwise.
type batchAck struct {
	Error  *jetstream.APIError `json:"error,omitempty"`
	Stream string              `json:"stream"`
	Seq    uint64              `json:"seq"`
	Batch  string              `json:"batch,omitempty"`
	Count  int                 `json:"count,omitempty"`
}

// batchTimeout bounds a whole batch whose context has no deadline.
const batchTimeout = 10 * time.Second

// publishBatch publishes bodies on subject as one atomic batch and returns
// the last message's sequence. fence, when set, is the expected last
// sequence of subject, checked on the first message; ttl, when > 0, is
// every message's TTL (already whole seconds).
//
// All messages are pipelined on the connection, each with its own reply
// subject under one inbox; replies come back in order. The first error
// reply is the batch's error (later replies then only report the batch as
// incomplete). A context that ends before the commit's reply leaves the
// outcome unknown.
func (a *Appender) publishBatch(ctx context.Context, subject string, bodies [][]byte, fence *uint64, ttl time.Duration) (uint64, error) {
	n := len(bodies)
	if n == 0 || n > MaxBatch {
		return 0, fmt.Errorf("parti: projection: batch of %d messages (want 1..%d)", n, MaxBatch)
	}
	ctx, cancel := withDefaultTimeout(ctx, batchTimeout)
	defer cancel()

	nc := a.js.Conn()
	id := rand.Text() // 26 characters, 130 random bits
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox + ".*")
	if err != nil {
		return 0, fmt.Errorf("parti: projection: batch %s: subscribe: %w", id, err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	for i, body := range bodies {
		m := &nats.Msg{
			Subject: subject,
			Reply:   inbox + "." + strconv.Itoa(i+1),
			Data:    body,
			Header:  nats.Header{},
		}
		m.Header.Set(hdrBatchID, id)
		m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		if i == 0 && fence != nil {
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, seqString(*fence))
		}
		if ttl > 0 {
			m.Header.Set(jetstream.MsgTTLHeader, ttl.String())
		}
		if i == n-1 {
			m.Header.Set(hdrBatchCommit, "1")
		}
		if err := nc.PublishMsg(m); err != nil {
			// Nothing is committed without the commit message.
			return 0, fmt.Errorf("parti: projection: batch %s: publish message %d of %d: %w", id, i+1, n, err)
		}
	}
	if err := nc.FlushWithContext(ctx); err != nil {
		return 0, fmt.Errorf("parti: projection: batch %s: flush (outcome unknown): %w", id, err)
	}

	for {
		msg, err := sub.NextMsgWithContext(ctx)
		if errors.Is(err, nats.ErrNoResponders) {
			// No stream takes the subject: nothing was stored.
			return 0, fmt.Errorf("parti: projection: batch %s on %s: %w", id, subject, jetstream.ErrNoStreamResponse)
		}
		if err != nil {
			return 0, fmt.Errorf("parti: projection: batch %s: waiting for the commit (outcome unknown): %w", id, err)
		}
		k, _ := strconv.Atoi(msg.Subject[strings.LastIndexByte(msg.Subject, '.')+1:])
		if st := msg.Header.Get(hdrStatus); st != "" {
			if st == "503" {
				return 0, fmt.Errorf("parti: projection: batch %s on %s: %w", id, subject, jetstream.ErrNoStreamResponse)
			}
			return 0, fmt.Errorf("parti: projection: batch %s on %s: message %d: status %s %s", id, subject, k, st, msg.Header.Get("Description"))
		}
		if k < n && len(msg.Data) == 0 {
			continue // staged
		}
		var ack batchAck
		if err := json.Unmarshal(msg.Data, &ack); err != nil {
			return 0, fmt.Errorf("parti: projection: batch %s: message %d: invalid reply %q: %w", id, k, msg.Data, err)
		}
		if ack.Error != nil {
			return 0, wrapPublish(ack.Error, fmt.Sprintf("atomic batch %s message %d of %d", id, k, n), subject)
		}
		if k != n {
			return 0, fmt.Errorf("parti: projection: batch %s: unexpected ack for message %d of %d", id, k, n)
		}
		if ack.Batch != id || ack.Count != n || ack.Seq < uint64(n) {
			return 0, fmt.Errorf("parti: projection: batch %s: commit ack %+v does not match a batch of %d", id, ack, n)
		}
		return ack.Seq, nil
	}
}
