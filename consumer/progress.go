package consumer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti/events"
)

// Progress records: what keeps floor writes cheap when partitions are sparse.
//
// Writing each partition's own floor record every CommitInterval costs one
// write per partition that processed anything in the interval: when
// messages are spread over many partitions, about one write per message.
// Instead, every CommitInterval the engine writes one progress record on a
// subject of its own (one per Join), listing every partition whose floor
// moved since its own floor record was last written, with the tenure's
// token. The partition's own record names that subject and is rewritten
// only every partitionCommit (and, as always, confirmed at a hand-off).
//
// A new owner reads the partition's record, then the progress record it
// names, and takes the entry's floor if it carries the same token as the
// partition's record (the same tenure): after a crash it repeats about one
// CommitInterval of work, as before. Once the new owner wrote the
// partition's record under its own token, naming its own progress subject,
// nobody reads the old owner's progress for that partition again: a late
// write of the old owner there moves no floor anyone relies on, and its
// next write of the partition's own record fails on the fence, which stops
// it acting on the partition (within partitionCommit; the member's lease
// check stops it sooner).
//
// Floors in a progress record only grow within a tenure, so reading an
// older progress record than the newest is safe: it repeats more, never
// skips.

// partitionCommit is how often a partition whose floor moved gets its own
// floor record rewritten: because it processed messages (its progress
// record, written every CommitInterval, has the floor meanwhile) or only
// because its consumer moved past other partitions' messages (a shorter
// re-read for the next owner after a crash). Each rewrite is a fenced
// write of its own: in a drain every busy partition is rewritten once per
// partitionCommit, so at 4,096 partitions a period of one second cost
// about 4,000 writes a second, as much CPU as the drain's deliveries to 16
// members (bench/consumer). Five seconds bounds what a crash whose
// progress record is lost repeats, and how soon the fence stops a late
// previous owner when its lease check did not.
const partitionCommit = 5 * time.Second

// progressCacheFor is how long a progress record read for one new
// partition serves the others arriving with it.
const progressCacheFor = time.Second

// progressEntry is one partition's floor in a progress record, encoded as
// a JSON array [partition, floor, token seq, token incarnation] to keep
// records of thousands of partitions small.
type progressEntry struct {
	Partition string
	Floor     uint64
	Token     events.Token
}

func (p progressEntry) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{p.Partition, p.Floor, p.Token.Seq, p.Token.Incarnation})
}

func (p *progressEntry) UnmarshalJSON(b []byte) error {
	var a []json.RawMessage
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	if len(a) != 4 {
		return fmt.Errorf("consumer: progress entry has %d fields, want 4", len(a))
	}
	for i, dst := range []any{&p.Partition, &p.Floor, &p.Token.Seq, &p.Token.Incarnation} {
		if err := json.Unmarshal(a[i], dst); err != nil {
			return err
		}
	}
	return nil
}

// progressRecord is the body of a progress record.
type progressRecord struct {
	Member string          `json:"member"`
	Floors []progressEntry `json:"floors"`
}

type progressCache struct {
	mu sync.Mutex
	m  map[string]cachedProgress
}

type cachedProgress struct {
	at     time.Time
	floors map[string]progressEntry
}

// newProgressSubject returns a fresh progress subject for one Join.
func newProgressSubject(floorStream string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return floorPrefix(floorStream) + ".progress." + hex.EncodeToString(b[:])
}

// progressFloor returns the floor the progress record on subj holds for
// partition under token (0 when it holds none). An unreadable record counts
// as holding nothing: the partition's own record stands.
func (e *engine) progressFloor(ctx context.Context, subj, partition string, token events.Token) (uint64, error) {
	if !strings.HasPrefix(subj, floorPrefix(e.cfg.FloorStream)+".progress.") {
		return 0, nil // not ours to read
	}
	e.progCache.mu.Lock()
	c, ok := e.progCache.m[subj]
	e.progCache.mu.Unlock()
	if !ok || time.Since(c.at) > progressCacheFor {
		m, err := e.floors.GetLastMsgForSubject(ctx, subj)
		var r progressRecord
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			// Purged at a graceful leave: the partitions' own records hold
			// their floors.
		case err != nil:
			return 0, err
		default:
			if err := json.Unmarshal(m.Data, &r); err != nil {
				e.errorf("progress-record", err, "unreadable progress record; using the partition's own floor", "subject", subj, "seq", m.Sequence)
				r.Floors = nil
			}
		}
		c = cachedProgress{at: time.Now(), floors: make(map[string]progressEntry, len(r.Floors))}
		for _, f := range r.Floors {
			c.floors[f.Partition] = f
		}
		e.progCache.mu.Lock()
		if e.progCache.m == nil {
			e.progCache.m = map[string]cachedProgress{}
		}
		e.progCache.m[subj] = c
		e.progCache.mu.Unlock()
	}
	if f, ok := c.floors[partition]; ok && f.Token == token {
		return f.Floor, nil
	}
	return 0, nil
}

// Progress chunks. A member holding tens of thousands of busy partitions
// would need a progress record larger than a NATS message may be (the
// server's max_payload, 1 MB by default: about 35,000 entries). So its
// partitions are spread over chunks, each a progress record on a subject
// of its own (the first is progSubj, the k-th progSubj.k), holding at most
// progBudget bytes of entries. A partition is placed in a chunk with room
// for its entry when its tenure starts and stays there: its floor record
// names that chunk's subject, so a next owner reads the record that holds
// its entry. A tenure's room is given back when it ends.

// chunkWrite is what the committer writes to one chunk in one interval.
type chunkWrite struct {
	floors []progressEntry
	noted  []*part
	moved  bool
}

// progressEntryBytes bounds the encoded size of a partition's entry.
func progressEntryBytes(partition string) int {
	// ["<id>",<floor>,<seq>,<incarnation>], and the comma before it.
	return len(appendJSONString(nil, partition)) + 3*20 + 6
}

// progressBudget returns the bytes of entries one progress record may
// hold: half of the largest message the server and the floor stream
// accept, leaving room for the headers and the member's ID.
func progressBudget(maxPayload int64, maxMsgSize int32) int {
	limit := maxPayload
	if maxMsgSize > 0 && int64(maxMsgSize) < limit {
		limit = int64(maxMsgSize)
	}
	if limit <= 0 {
		limit = 1 << 20
	}
	return int(max(limit/2-1024, 1024))
}

// reserveChunk places a new tenure of partition in the first chunk with
// room for its entry (an empty chunk has room for any), adding a chunk
// when none has. e.mu held.
func (e *engine) reserveChunk(partition string) int {
	n := progressEntryBytes(partition)
	budget := e.progBudget
	if b := progressBudgetForTest.Load(); b > 0 {
		budget = int(b)
	}
	for k, used := range e.chunkUse {
		if used+n <= budget || used == 0 {
			e.chunkUse[k] += n
			return k
		}
	}
	e.chunkUse = append(e.chunkUse, n)
	return len(e.chunkUse) - 1
}

// progressBudgetForTest, when positive, replaces the budget (tests).
var progressBudgetForTest atomic.Int64

// chunkSubject returns the subject of progress chunk k.
func (e *engine) chunkSubject(k int) string {
	if k == 0 {
		return e.progSubj
	}
	return e.progSubj + "." + strconv.Itoa(k)
}

// writeProgress writes the progress record of chunk k (floors sorted by
// partition), fenced on the subject's last sequence: only this engine
// writes it, so a failed fence means a write whose reply was lost; it
// re-reads the sequence and writes again.
func (e *engine) writeProgress(ctx context.Context, k int, floors []progressEntry) error {
	return e.writeProgressTTL(ctx, k, floors, progressTTL)
}

func (e *engine) writeProgressTTL(ctx context.Context, k int, floors []progressEntry, ttl time.Duration) error {
	floors = slices.Clone(floors)
	slices.SortFunc(floors, func(a, b progressEntry) int { return strings.Compare(a.Partition, b.Partition) })
	body := appendProgressRecord(nil, e.name, floors)
	subj := e.chunkSubject(k)
	e.progMu.Lock()
	defer e.progMu.Unlock()
	for len(e.progRevs) <= k {
		e.progRevs = append(e.progRevs, 0)
	}
	for i := 0; i < 2; i++ {
		opts := []jetstream.PublishOpt{jetstream.WithExpectStream(e.cfg.FloorStream), jetstream.WithExpectLastSequencePerSubject(e.progRevs[k])}
		if e.progTTL {
			opts = append(opts, jetstream.WithMsgTTL(ttl))
		}
		opCtx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
		ack, err := e.js.PublishMsg(opCtx, &nats.Msg{Subject: subj, Data: body}, opts...)
		cancel()
		if err == nil {
			e.progRevs[k] = ack.Sequence
			e.cnt.floorWrites.Add(1)
			return nil
		}
		if permissionErr(e.nc, err) {
			err = wrapPermission(e.nc, "progress-write", err)
			e.fatal(err)
			return err
		}
		if apiCode(err) != codeWrongLastSeq {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
		m, rerr := e.floors.GetLastMsgForSubject(rctx, subj)
		cancel()
		switch {
		case errors.Is(rerr, jetstream.ErrMsgNotFound):
			e.progRevs[k] = 0
		case rerr != nil:
			return rerr
		default:
			e.progRevs[k] = m.Sequence
		}
	}
	return fmt.Errorf("consumer: progress record %s: the fence failed twice", subj)
}

// appendProgressRecord appends the JSON of a progress record to b: the
// bytes json.Marshal(progressRecord{...}) gives, without its reflection and
// the re-validation of each entry's MarshalJSON output. The committer
// writes one every CommitInterval with every partition the member moved
// since the partitions' own records (thousands in a drain), so the encoding
// is on the member's hot path.
func appendProgressRecord(b []byte, member string, floors []progressEntry) []byte {
	if b == nil {
		b = make([]byte, 0, 32+len(member)+len(floors)*(24+8))
	}
	b = append(b, `{"member":`...)
	b = appendJSONString(b, member)
	b = append(b, `,"floors":`...)
	if floors == nil {
		return append(b, "null}"...)
	}
	b = append(b, '[')
	for i, f := range floors {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = appendJSONString(b, f.Partition)
		b = append(b, ',')
		b = strconv.AppendUint(b, f.Floor, 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, f.Token.Seq, 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, f.Token.Incarnation, 10)
		b = append(b, ']')
	}
	return append(b, "]}"...)
}

// appendJSONString appends s as encoding/json writes it: plain printable
// ASCII as it is, anything else (quotes, controls, HTML characters,
// non-ASCII) through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// progressTTL is how long a progress record outlives its last write,
// where the floor stream allows per-message TTLs (those the helper creates
// do): long enough for the next owners of a crashed member's partitions to
// read it. A record that expired only costs repeats: the partitions' own
// records are at most partitionCommit behind.
const progressTTL = time.Hour

// clearProgress replaces the member's progress record with an empty one
// (expiring within a second where the stream allows TTLs) once every
// partition was handed off with its own floor record written: nobody
// needs its floors any more.
func (e *engine) clearProgress() {
	if e.floors == nil {
		return
	}
	e.progMu.Lock()
	var written []int
	for k, rev := range e.progRevs {
		if rev != 0 {
			written = append(written, k)
		}
	}
	e.progMu.Unlock()
	for _, k := range written {
		ctx, cancel := context.WithTimeout(context.Background(), 3*e.cfg.OpTimeout)
		if err := e.writeProgressTTL(ctx, k, nil, time.Second); err != nil {
			e.log.Debug("clearing the progress record failed", "subject", e.chunkSubject(k), "err", err)
		}
		cancel()
	}
}
