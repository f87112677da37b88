package consumer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti/events"
)

// A partition's floor is one record on its own subject of the floor stream
// (which keeps one message per subject): the stream sequence below which
// every message of the partition was processed, and the fencing token of
// the owner that wrote it. Every write expects the subject's last sequence
// to be the one its writer last saw, so a write of an owner that lost the
// partition fails once the next owner claimed it.

// floorRecord is the body of a floor record.
type floorRecord struct {
	Floor  uint64       `json:"floor"`
	Token  events.Token `json:"token"`
	Member string       `json:"member,omitempty"`
	// Progress names the writer's progress subject (see progress.go):
	// floors its tenure moved since this record, under the same token.
	Progress string `json:"progress,omitempty"`
}

// JetStream API error code of a failed expected-last-subject-sequence check.
const codeWrongLastSeq = 10071

// errSuperseded: a newer owner wrote the partition's floor.
var errSuperseded = errors.New("consumer: a newer owner claimed the partition")

// floorPrefix is the floor stream's subject prefix. It follows the stream's
// name, not the group's: a group migrated to a new generation (a new group
// ID) keeps its partitions' floors by naming the old floor stream.
func floorPrefix(floorStream string) string { return "parti-floor." + floorStream }

// floorSubject is the partition's subject on the floor stream: partition IDs
// are any strings, so they are encoded to one token.
func (e *engine) floorSubject(partition string) string {
	return floorPrefix(e.cfg.FloorStream) + "." + base64.RawURLEncoding.EncodeToString([]byte(partition))
}

// readFloor returns the partition's floor record and its sequence (0, 0
// when it never had one).
func (e *engine) readFloor(ctx context.Context, p *part) (floorRecord, uint64, error) {
	m, err := e.floors.GetLastMsgForSubject(ctx, e.floorSubject(p.id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return floorRecord{Floor: e.origin}, 0, nil
	}
	if err != nil {
		return floorRecord{}, 0, err
	}
	var r floorRecord
	if err := json.Unmarshal(m.Data, &r); err != nil {
		// Not ours: count it and overwrite it, from the origin.
		e.errorf("floor-record", err, "unreadable floor record; starting the partition from the stream's origin", "partition", p.id, "seq", m.Sequence)
		return floorRecord{Floor: e.origin}, m.Sequence, nil
	}
	return r, m.Sequence, nil
}

// writeFloor writes floor for p fenced on rev and returns the record's
// sequence. It retries what may pass (time-outs, a leader election) until
// ctx ends, and re-reads the record after a failed fence: a record of an
// older owner (one that lost the partition and wrote late) or of this
// tenure (a write whose reply was lost) is overwritten; a newer owner's
// returns errSuperseded.
func (e *engine) writeFloor(ctx context.Context, p *part, floor, rev uint64) (uint64, error) {
	body, err := json.Marshal(floorRecord{Floor: floor, Token: p.a.Token, Member: e.name, Progress: e.chunkSubject(p.chunk)})
	if err != nil {
		return 0, err
	}
	subj := e.floorSubject(p.id)
	for i := 0; ; i++ {
		opCtx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
		ack, err := e.js.PublishMsg(opCtx, &nats.Msg{Subject: subj, Data: body},
			jetstream.WithExpectStream(e.cfg.FloorStream), jetstream.WithExpectLastSequencePerSubject(rev))
		cancel()
		if err == nil {
			e.cnt.floorWrites.Add(1)
			return ack.Sequence, nil
		}
		if permissionErr(e.nc, err) {
			err = wrapPermission(e.nc, "floor-write", err)
			e.fatal(err)
			return 0, err
		}
		if apiCode(err) == codeWrongLastSeq {
			rctx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
			r, seq, rerr := e.readFloor(rctx, p)
			cancel()
			if rerr == nil {
				if p.a.Token.Less(r.Token) {
					return 0, errSuperseded
				}
				rev = seq
				continue
			}
			err = rerr
		}
		if ctx.Err() != nil || errors.Is(err, nats.ErrConnectionClosed) {
			return 0, fmt.Errorf("consumer: writing the floor of %s: %w", p.id, err)
		}
		e.log.Debug("floor write failed; retrying", "partition", p.id, "try", i+1, "err", err)
		t := time.NewTimer(retryWait(i))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
}

// load reads p's floor and claims it with p's token (so that a late write
// of an earlier owner fails), then makes p active. It retries until p's
// assignment ends.
func (e *engine) load(p *part) {
	defer func() {
		e.mu.Lock()
		e.loading--
		e.loadDoneAt = time.Now()
		e.touch(p)
		e.mu.Unlock()
		close(p.loaded)
		e.kickRun()
	}()
	select {
	case e.loadSem <- struct{}{}:
		defer func() { <-e.loadSem }()
	case <-p.ctx.Done():
		return
	}
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(p.ctx, e.cfg.OpTimeout)
		r, rev, err := e.readFloor(ctx, p)
		cancel()
		if err == nil && p.a.Token.Less(r.Token) {
			err = errSuperseded
		}
		if err == nil && r.Progress != "" {
			// The previous tenure's floor may have moved on in its
			// member's progress record since it wrote this one.
			ctx, cancel := context.WithTimeout(p.ctx, e.cfg.OpTimeout)
			var f uint64
			f, err = e.progressFloor(ctx, r.Progress, p.id, r.Token)
			cancel()
			r.Floor = max(r.Floor, f)
		}
		if err == nil {
			rev, err = e.writeFloor(p.ctx, p, r.Floor, rev)
		}
		if err == nil {
			e.mu.Lock()
			p.floor, p.rev, p.covered, p.lastWrite = r.Floor, rev, r.Floor, time.Now()
			p.activeAt = p.lastWrite
			if p.state == partLoading {
				p.state = partActive
			}
			e.mu.Unlock()
			return
		}
		if errors.Is(err, errSuperseded) {
			e.supersede(p)
			return
		}
		if permissionErr(e.nc, err) || errors.Is(err, ErrPermission) {
			e.fatal(wrapPermission(e.nc, "floor-read", err))
			return
		}
		if p.ctx.Err() != nil {
			return
		}
		e.errorf("floor-read", err, "reading the partition's floor failed; retrying", "partition", p.id)
		t := time.NewTimer(retryWait(i))
		select {
		case <-t.C:
		case <-p.ctx.Done():
			t.Stop()
			return
		}
	}
}

// supersede stops acting on p: a newer owner has it.
func (e *engine) supersede(p *part) {
	e.mu.Lock()
	p.superseded = true
	e.touch(p)
	e.mu.Unlock()
	p.cancel()
	e.errorf("floor-fence", errSuperseded, "a newer owner claimed the partition's floor; stopped consuming it", "partition", p.id, "token", p.a.Token)
	e.kickRun()
}

// commit writes p's floor up to what it processed, if that moved. Writes
// of one partition are serialised.
func (e *engine) commit(ctx context.Context, p *part) error {
	p.cmu.Lock()
	defer p.cmu.Unlock()
	e.mu.Lock()
	if e.crashed || p.superseded || p.state == partLoading {
		e.mu.Unlock()
		return ErrSettled
	}
	f, floor, rev := floorCandidate(p), p.floor, p.rev
	p.dirty = false
	e.mu.Unlock()
	if f <= floor {
		return nil
	}
	seq, err := e.writeFloor(ctx, p, f, rev)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		e.markDirty(p)
		if errors.Is(err, errSuperseded) {
			e.mu.Unlock()
			e.supersede(p)
			e.mu.Lock()
		}
		return err
	}
	p.floor, p.rev, p.lastWrite = f, seq, time.Now()
	return nil
}

// passEvery is how often the committer looks at every partition for the
// own records that are due.
const passEvery = time.Second

// markDirty notes that p processed something its own record does not
// hold: the committer lists it in the progress records until its own
// record is written. e.mu held.
func (e *engine) markDirty(p *part) {
	p.dirty = true
	if !p.listed {
		p.listed = true
		e.dirtyList = append(e.dirtyList, p)
	}
}

// committer writes floors in the background. Unless ConfirmEach, every
// CommitInterval it writes the member's progress record with the floors of
// the partitions that processed something since their own records were
// written (one write for all of them; it keeps those on a list, so that a
// tick costs what moved, not every partition held), and rewrites a
// partition's own record every partitionCommit while its floor moves (it
// looks for those due once a second). With ConfirmEach every message's floor
// is confirmed on its own; the committer only catches up idle ones.
func (e *engine) committer() {
	every := e.cfg.CommitInterval
	if e.cfg.ConfirmEach {
		every = partitionCommit
	}
	t := time.NewTicker(every)
	defer t.Stop()
	lastPass := time.Now() // the last look at every partition
	for {
		select {
		case <-e.done:
			return
		case <-e.stopReq:
			return
		case <-t.C:
		}
		now := time.Now()
		var (
			todo []*part
			// Per progress chunk: the floors its partitions moved, and
			// whether any moved past what the chunk's record holds.
			chunks = map[int]*chunkWrite{}
		)
		e.mu.Lock()
		if e.crashed || e.fenced {
			e.mu.Unlock()
			return
		}
		// The progress records list the partitions that processed
		// something since their own records: those on the dirty list.
		kept := e.dirtyList[:0]
		for _, p := range e.dirtyList {
			if !p.dirty || p.state != partActive || p.superseded {
				p.listed = false
				continue
			}
			kept = append(kept, p)
			if c := floorCandidate(p); c > p.floor && !e.cfg.ConfirmEach {
				w := chunks[p.chunk]
				if w == nil {
					w = &chunkWrite{}
					chunks[p.chunk] = w
				}
				w.floors = append(w.floors, progressEntry{Partition: p.id, Floor: c, Token: p.a.Token})
				w.noted = append(w.noted, p)
				w.moved = w.moved || c > p.noted
			}
		}
		clear(e.dirtyList[len(kept):])
		e.dirtyList = kept
		// Own records are due every few seconds: look at every partition
		// once a second, not every CommitInterval (a member may hold
		// tens of thousands).
		sincePass := now.Sub(lastPass)
		if sincePass >= passEvery {
			lastPass = now
			for _, p := range e.parts {
				if p.state != partActive || p.superseded || floorCandidate(p) <= p.floor {
					continue
				}
				if now.Sub(p.lastWrite) >= partitionCommit {
					todo = append(todo, p)
				}
			}
		}
		// Within the write budget, the longest unwritten first: with many
		// busy partitions each is written less often, rather than the
		// writes crowding out the deliveries.
		if budget := max(1, int(float64(e.cfg.MaxFloorWrites)*sincePass.Seconds())); len(todo) > budget {
			slices.SortFunc(todo, func(a, b *part) int {
				if c := a.lastWrite.Compare(b.lastWrite); c != 0 {
					return c
				}
				return strings.Compare(a.id, b.id)
			})
			todo = todo[:budget]
		}
		e.mu.Unlock()
		for _, k := range slices.Sorted(maps.Keys(chunks)) {
			w := chunks[k]
			if !w.moved {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*e.cfg.OpTimeout)
			err := e.writeProgress(ctx, k, w.floors)
			cancel()
			if err != nil {
				e.errorf("progress-write", err, "writing the member's progress record failed", "subject", e.chunkSubject(k))
				continue
			}
			e.mu.Lock()
			for i, p := range w.noted {
				p.noted = max(p.noted, w.floors[i].Floor)
			}
			e.mu.Unlock()
		}
		e.parallel(len(todo), func(i int) {
			ctx, cancel := context.WithTimeout(todo[i].ctx, 3*e.cfg.OpTimeout)
			defer cancel()
			if err := e.commit(ctx, todo[i]); err != nil && todo[i].ctx.Err() == nil && !errors.Is(err, ErrSettled) {
				e.errorf("floor-write", err, "writing a partition's floor failed", "partition", todo[i].id)
			}
		})
	}
}

// parallelOps bounds the requests the engine sends at once.
const parallelOps = 32

// parallel runs f(0..n-1), parallelOps at a time, and waits.
func (e *engine) parallel(n int, f func(i int)) {
	if n == 0 {
		return
	}
	sem := make(chan struct{}, parallelOps)
	done := make(chan struct{}, n)
	for i := range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; done <- struct{}{} }()
			f(i)
		}()
	}
	for range n {
		<-done
	}
}

func retryWait(i int) time.Duration {
	return min(50*time.Millisecond<<min(i, 6), 2*time.Second)
}
