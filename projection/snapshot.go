package projection

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
)

// DefaultChunkBytes is the default size of one snapshot chunk's state bytes.
// A chunk's body is JSON with the bytes in base64 (4/3 larger), so 512 KiB
// stays below the default 1 MiB message limit.
const DefaultChunkBytes = 512 << 10

// DefaultSnapshotTTL is the snapshot TTL WriteSnapshot uses when given 0.
const DefaultSnapshotTTL = time.Hour

// WriteSnapshot publishes a snapshot of s, the fold of the log up to
// s.LastSeq, on the group's snapshot subject: decider.Snapshot's bytes cut
// into chunks of at most chunkBytes (0: DefaultChunkBytes), each an
// events.SnapshotChunk carrying UpTo, the state's hash, its part number and
// the number of parts, each with a per-message TTL of ttl (0:
// DefaultSnapshotTTL; rounded up to whole seconds). Several chunks are
// published as one atomic batch, so a reader finds them contiguous and
// complete, or not at all. Snapshots are unfenced: nothing about them goes on
// the log, and a reader checks the sequence and the hash and can always
// refold instead.
//
// s must not be mutated meanwhile: pass a Clone (Projection.State returns
// one). It fails with decider.ErrBusy in the middle of a multi-part event.
func WriteSnapshot(ctx context.Context, app *Appender, s *decider.State, ttl time.Duration, chunkBytes int) error {
	if s.LastSeq == 0 {
		return fmt.Errorf("parti: projection: WriteSnapshot: the state has folded nothing")
	}
	if ttl < 0 {
		return fmt.Errorf("parti: projection: WriteSnapshot: ttl must be >= 0, got %v", ttl)
	}
	if ttl == 0 {
		ttl = DefaultSnapshotTTL
	}
	if chunkBytes < 0 {
		return fmt.Errorf("parti: projection: WriteSnapshot: chunkBytes must be >= 0, got %d", chunkBytes)
	}
	if chunkBytes == 0 {
		chunkBytes = DefaultChunkBytes
	}
	data, hash, err := decider.Snapshot(s)
	if err != nil {
		return fmt.Errorf("parti: projection: WriteSnapshot: %w", err)
	}
	parts := max(1, (len(data)+chunkBytes-1)/chunkBytes)
	if parts > MaxBatch {
		return fmt.Errorf("parti: projection: WriteSnapshot: %d bytes make %d chunks of %d bytes, at most %d fit one atomic batch", len(data), parts, chunkBytes, MaxBatch)
	}
	bodies := make([][]byte, parts)
	for p := range parts {
		lo, hi := p*chunkBytes, min(len(data), (p+1)*chunkBytes)
		c := &events.SnapshotChunk{UpTo: s.LastSeq, Hash: hash, Part: p, Parts: parts, Data: data[lo:hi]}
		if bodies[p], err = app.encode(c); err != nil {
			return fmt.Errorf("parti: projection: WriteSnapshot: %w", err)
		}
	}
	ttl = ttlSeconds(ttl)
	subject := app.subjects.Snapshot()
	if parts == 1 {
		if _, err := app.publishBody(ctx, subject, bodies[0], "snapshot", jetstream.WithMsgTTL(ttl)); err != nil {
			return err
		}
		return nil
	}
	if _, err := app.publishBatch(ctx, subject, bodies, nil, ttl); err != nil {
		return fmt.Errorf("parti: projection: WriteSnapshot: %w", err)
	}
	return nil
}

// errNoSnapshot means the snapshot subject is empty.
var errNoSnapshot = errors.New("no snapshot")

// loadSnapshot reads the newest snapshot from the stream: the last message on
// the snapshot subject is the last chunk, and the batch put the others just
// before it. Every chunk must agree on UpTo, Hash and Parts; the state is
// restored by decider.Restore, which checks the hash and the invariants. Any
// problem is an error: the caller then folds from sequence 1.
func loadSnapshot(ctx context.Context, st jetstream.Stream, subjects events.Subjects) (*decider.State, error) {
	subject := subjects.Snapshot()
	last, found, err := lastOnSubject(ctx, st, subject)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errNoSnapshot
	}
	head, err := snapshotChunk(last)
	if err != nil {
		return nil, err
	}
	if head.Parts < 1 || head.Part != head.Parts-1 || head.Parts > MaxBatch {
		return nil, fmt.Errorf("snapshot at %d: last chunk is part %d of %d", last.Seq, head.Part, head.Parts)
	}
	if head.UpTo == 0 || head.UpTo >= last.Seq {
		return nil, fmt.Errorf("snapshot at %d: covers the log up to %d, which is not before it", last.Seq, head.UpTo)
	}
	if uint64(head.Parts) > last.Seq {
		return nil, fmt.Errorf("snapshot at %d: %d parts do not fit before it", last.Seq, head.Parts)
	}
	var data bytes.Buffer
	first := last.Seq - uint64(head.Parts-1)
	for p := 0; p < head.Parts-1; p++ {
		seq := first + uint64(p)
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			return nil, fmt.Errorf("snapshot at %d: chunk %d at %d: %w", last.Seq, p, seq, err)
		}
		rec := rawRecord(m)
		if rec.Subject != subject {
			return nil, fmt.Errorf("snapshot at %d: chunk %d at %d is on %s", last.Seq, p, seq, rec.Subject)
		}
		c, err := snapshotChunk(rec)
		if err != nil {
			return nil, err
		}
		if c.UpTo != head.UpTo || c.Hash != head.Hash || c.Parts != head.Parts || c.Part != p {
			return nil, fmt.Errorf("snapshot at %d: chunk at %d (part %d/%d up to %d) does not belong to it", last.Seq, seq, c.Part, c.Parts, c.UpTo)
		}
		data.Write(c.Data)
	}
	data.Write(head.Data)
	s, err := decider.Restore(data.Bytes(), head.Hash)
	if err != nil {
		return nil, fmt.Errorf("snapshot at %d: %w", last.Seq, err)
	}
	if s.LastSeq != head.UpTo {
		return nil, fmt.Errorf("snapshot at %d: state folded up to %d, chunks say %d", last.Seq, s.LastSeq, head.UpTo)
	}
	return s, nil
}

func snapshotChunk(r events.Record) (*events.SnapshotChunk, error) {
	if r.Err != nil {
		return nil, fmt.Errorf("snapshot chunk at %d: %w", r.Seq, r.Err)
	}
	c, ok := r.Event.(*events.SnapshotChunk)
	if !ok {
		return nil, fmt.Errorf("snapshot chunk at %d: is a %s", r.Seq, r.Event.Type())
	}
	return c, nil
}
