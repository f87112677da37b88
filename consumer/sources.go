package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// source is one of the member's consumers on the user's stream: an ordered
// (acknowledgement-free) consumer over the subjects of a fixed set of
// partitions, from a start sequence. A partition belongs to at most one
// source at a time; deliveries for a partition from any other source are
// ignored. Sources are created for partitions that need one (new, or
// drained after an overflow), grouped by how far behind they are, and
// merged once they all reached the end of the stream.
type source struct {
	id      uint64
	name    string
	filters []string
	start   uint64
	cons    jetstream.Consumer
	created time.Time

	// Guarded by e.mu.
	cc      jetstream.ConsumeContext
	n       int    // partitions it delivers
	pos     uint64 // highest stream sequence it delivered
	lastMsg time.Time
	atTail  bool   // its last delivery had nothing pending after it
	dseq    uint64 // its last delivery's consumer sequence
	gap     bool   // a delivery went missing: being replaced
	stopped bool
}

// tidyForTest, when positive, replaces tidyEvery for engines started after
// it is set (tests: with the tidy ticks an hour apart, only the kicks keep
// the consumers in line with the partitions).
var tidyForTest atomic.Int64

// The control goroutine gathers the assignment changes of one rebalance
// (the member cancels every revoked assignment in one pass, then assigns in
// one pass) into one change: it waits for a quiet spell, within a bound.
const (
	quietSpell = 2 * time.Millisecond
	maxGather  = 20 * time.Millisecond
	// tidyEvery is how often sources are merged, overflowed partitions
	// re-read and empty sources stopped even without a change.
	tidyEvery = time.Second
	// settledFor is how long a source without deliveries counts as having
	// reached the end of the stream.
	settledFor = time.Second
	// A partition whose floor loaded waits for the others still loading
	// before it gets a consumer, as long as loads keep finishing (one at
	// least every holdForLoads), at most maxHoldForLoads: partitions that
	// arrive together should share a few consumers, not get one per batch
	// of loads (each consumer scans the stream on its own).
	holdForLoads    = time.Second
	maxHoldForLoads = 30 * time.Second
	// consumeExpiry and consumeHeartbeat shape the pull requests: a
	// consumer that stops answering (its server is gone) is reported after
	// two missed heartbeats.
	consumeExpiry    = 5 * time.Second
	consumeHeartbeat = time.Second
	// pullBatch is how many messages a consumer's pull asks for (nats.go
	// asks again at half): 4 × nats.go's default, one pull request per
	// 1,000 messages instead of per 250. Measured in the drain bench
	// (whole-process CPU per message, interleaved, load 20-31), 4,096
	// partitions: 1 member 8.9 → 7.2 µs, 4 members 8.0 → 5.7 µs, 16
	// members 9.8 → 7.8 µs; 1,024 partitions 4 and 16 members 6.1–7.6 →
	// 5.0–6.9 µs. The client buffers up to this many messages per
	// consumer; nats.go's pending limits per subscription (64 MiB by
	// default) still bound the bytes, and a consumer that overflows them
	// shows a gap and is replaced.
	pullBatch = 2000
)

// run is the control goroutine: it reads and claims new partitions' floors,
// hands revoked ones off, keeps the member's consumers in line with its
// partitions and checks them.
func (e *engine) run() {
	defer close(e.done)
	select {
	case <-e.ready:
	case <-e.stopReq:
		e.finalize()
		return
	}
	go e.committer()
	var audit <-chan time.Time
	if e.cfg.CheckInterval > 0 {
		t := time.NewTicker(e.cfg.CheckInterval)
		defer t.Stop()
		audit = t.C
	}
	every := tidyEvery
	if d := tidyForTest.Load(); d > 0 {
		every = time.Duration(d)
	}
	tidy := time.NewTicker(every)
	defer tidy.Stop()
	memberDone := e.member.Done()
	handoffs := make(chan struct{}, 1)
	var running int // hand-off goroutines
	for {
		select {
		case <-e.kick:
			e.gather()
			running += e.reconcile(handoffs, false)
		case <-tidy.C:
			running += e.reconcile(handoffs, true)
		case <-handoffs:
			running--
		case <-audit:
			e.audit()
		case <-memberDone:
			e.mu.Lock()
			e.closing = true
			e.mu.Unlock()
			memberDone = nil
			running += e.reconcile(handoffs, true)
			e.waitHandoffs(running, handoffs)
			e.finalize()
			return
		case <-e.stopReq:
			e.mu.Lock()
			e.closing = true
			e.mu.Unlock()
			running += e.reconcile(handoffs, true)
			e.waitHandoffs(running, handoffs)
			e.finalize()
			return
		}
	}
}

func (e *engine) waitHandoffs(n int, ch chan struct{}) {
	for ; n > 0; n-- {
		<-ch
	}
}

// gather waits for a quiet spell of kicks, at most maxGather.
func (e *engine) gather() {
	deadline := time.NewTimer(maxGather)
	quiet := time.NewTimer(quietSpell)
	defer deadline.Stop()
	defer quiet.Stop()
	for {
		select {
		case <-e.kick:
			quiet.Reset(quietSpell)
		case <-quiet.C:
			return
		case <-deadline.C:
			return
		}
	}
}

// reconcile starts what the partition table needs: floor loads for new
// partitions, hand-offs for revoked ones, consumers for partitions without
// one, merges of consumers that reached the end of the stream. It returns
// the number of hand-off goroutines it started (each signals handoffs).
func (e *engine) reconcile(handoffs chan struct{}, full bool) int {
	e.mu.Lock()
	if e.fenced {
		e.mu.Unlock()
		return 0
	}
	// What to look at: the partitions touched since the last reconcile, or
	// (tidy, closing) every one.
	look := e.touched
	for _, p := range look {
		p.touched = false
	}
	e.touched, e.lookBuf = e.lookBuf[:0], nil
	if full {
		look = look[:0]
		for _, p := range e.parts {
			look = append(look, p)
		}
	} else {
		look = slices.DeleteFunc(look, func(p *part) bool { return e.parts[p.id] != p })
	}
	defer func() { clear(look); e.lookBuf = look[:0] }()
	var revoking, loading []*part
	for _, p := range look {
		if p.state != partRevoking && (p.ctx.Err() != nil || e.closing) {
			if p.state == partLoading && !p.loadStarted {
				p.loadStarted = true // never loaded: nothing to wait for
				close(p.loaded)
			}
			p.state = partRevoking
			p.cancel()
			revoking = append(revoking, p)
		}
	}
	for _, p := range e.leaving {
		if p.state != partRevoking {
			if p.state == partLoading && !p.loadStarted {
				p.loadStarted = true
				close(p.loaded)
			}
			p.state = partRevoking
			revoking = append(revoking, p)
		}
	}
	e.leaving = nil
	for _, p := range revoking {
		e.detach(p)
		if p.waitingSlot {
			p.waitingSlot = false
			e.slotQueue = slices.DeleteFunc(e.slotQueue, func(q *part) bool { return q == p })
		}
	}
	var homeless []*part
	for _, p := range look {
		switch {
		case p.state == partLoading && !p.loadStarted:
			p.loadStarted = true
			if e.loading == 0 {
				e.loadDoneAt = time.Now() // a new round of loads: hold from now
			}
			e.loading++
			loading = append(loading, p)
		case p.state != partActive || p.superseded:
		case p.held: // on e.held: below
		case p.overflow && len(p.queue) <= e.cfg.PartitionBuffer/2:
			e.detach(p) // read the rest again from where it stopped
			homeless = append(homeless, p)
		case p.src == nil:
			homeless = append(homeless, p)
		}
	}
	// While floors are still loading, hold the partitions that just loaded
	// (briefly): partitions that arrive together then share consumers,
	// rather than each load's batch getting one. The held wait on a list
	// of their own, let go when the loads stop (or, on a tidy tick, when a
	// partition waited maxHoldForLoads), so that each load's kick does not
	// look at them all again.
	now := time.Now()
	holding := e.loading > 0 && now.Sub(e.loadDoneAt) < holdForLoads
	if holding {
		homeless = slices.DeleteFunc(homeless, func(p *part) bool {
			if now.Sub(p.activeAt) >= maxHoldForLoads {
				return false
			}
			p.held = true
			e.held = append(e.held, p)
			return true
		})
	}
	if len(e.held) > 0 && (!holding || full) {
		kept := e.held[:0]
		for _, p := range e.held {
			if holding && now.Sub(p.activeAt) < maxHoldForLoads {
				kept = append(kept, p)
				continue
			}
			p.held = false
			if e.parts[p.id] == p && p.state == partActive && !p.superseded && p.src == nil {
				homeless = append(homeless, p)
			}
		}
		clear(e.held[len(kept):])
		e.held = kept
	}
	var stop []*source
	for s := range e.sources {
		if s.n == 0 {
			stop = append(stop, s)
		}
	}
	// On the tidy ticks (full: look holds every partition), merge sources
	// that reached the end of the stream when there are more than the
	// partitions need, so that hand-offs do not leave the member with a
	// consumer per rebalance.
	active := 0
	if full {
		for _, p := range look {
			if p.state == partActive && !p.superseded {
				active++
			}
		}
	}
	if need := (active + e.cfg.FiltersPerConsumer - 1) / e.cfg.FiltersPerConsumer; full && len(e.sources)-len(stop) > need {
		now := time.Now()
		var settled, old []*source
		for s := range e.sources {
			if s.n == 0 || now.Sub(s.created) < settledFor {
				continue
			}
			old = append(old, s)
			if s.atTail || now.Sub(s.lastMsg) >= settledFor {
				settled = append(settled, s)
			}
		}
		// Far more consumers than the partitions need (partitions that
		// arrived in many small batches) each scan the stream on their
		// own: merging them re-reads what the ones ahead got, once.
		if len(e.sources)-len(stop) > 2*need && len(old) >= 2 {
			settled = old
		}
		if len(settled) >= 2 {
			for _, p := range e.parts {
				if p.src != nil && slices.Contains(settled, p.src) {
					e.detach(p)
					homeless = append(homeless, p)
				}
			}
			stop = append(stop, settled...)
		}
	}
	for _, s := range stop {
		s.stopped = true
		delete(e.sources, s)
	}
	// Group the partitions that need a consumer by how far they got, so
	// that a consumer starting far back re-reads few messages of partitions
	// that are further on.
	slices.SortFunc(homeless, func(a, b *part) int {
		if c := cmpU64(a.covered, b.covered); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	groups := layout(homeless, e.cfg.FiltersPerConsumer)
	e.mu.Unlock()

	for _, s := range stop {
		e.stopSource(s)
	}
	for _, p := range loading {
		go e.load(p)
	}
	if len(revoking) > 0 {
		go func() {
			e.handOff(revoking)
			handoffs <- struct{}{}
		}()
	}
	e.parallel(len(groups), func(i int) { e.startSource(groups[i]) })
	if full {
		e.met.Partitions(active)
	}
	if len(revoking) > 0 {
		return 1
	}
	return 0
}

// layout splits parts (sorted by how far they got, then by ID) into
// consumers of at most per partitions. Partitions at the same position are
// dealt over the consumers that position spans, never cut into ranges of
// neighbouring IDs: with file storage the server finds a filtered
// consumer's next message by walking the block's subject tree in
// lexicographic order until it meets one of the consumer's subjects, so a
// consumer holding only subjects late in that order walks past every
// earlier one for each message (see the package doc). Dealt, each
// consumer has a subject among the first few.
func layout(parts []*part, per int) [][]*part {
	n := (len(parts) + per - 1) / per
	if n <= 1 {
		if len(parts) == 0 {
			return nil
		}
		return [][]*part{parts}
	}
	// Slot i of the cut layout is consumer i/per. A run of partitions at
	// the same position fills its slots round-robin over the consumers the
	// run spans, so that neighbours go to different ones.
	out := make([]*part, len(parts))
	for lo := 0; lo < len(parts); {
		hi := lo + 1
		for hi < len(parts) && parts[hi].covered == parts[lo].covered {
			hi++
		}
		slots := make([]int, 0, hi-lo)
		for i := lo; i < hi; i++ {
			slots = append(slots, i)
		}
		// A slot's rank among the run's slots of its consumer.
		rank := func(i int) int { return i - max(lo, i/per*per) }
		slices.SortStableFunc(slots, func(a, b int) int { return rank(a) - rank(b) })
		for k, i := range slots {
			out[i] = parts[lo+k]
		}
		lo = hi
	}
	groups := make([][]*part, 0, n)
	for len(out) > 0 {
		k := min(len(out), per)
		groups = append(groups, out[:k])
		out = out[k:]
	}
	return groups
}

// detach takes p off its source, keeping how far the source delivered it.
// e.mu held.
func (e *engine) detach(p *part) {
	if p.src == nil {
		return
	}
	p.covered = coveredOf(p)
	p.overflow = false
	p.src.n--
	p.src = nil
	e.touch(p) // it needs another
}

// touch puts p on the list of partitions the next reconcile looks at: its
// tenure, floor load, consumer or overflow changed. Between the full
// looks of the tidy ticks, a reconcile costs what changed, not every
// partition held. e.mu held.
func (e *engine) touch(p *part) {
	if !p.touched {
		p.touched = true
		e.touched = append(e.touched, p)
	}
}

// touchKick touches p and kicks the control goroutine.
func (e *engine) touchKick(p *part) {
	e.mu.Lock()
	e.touch(p)
	e.mu.Unlock()
	e.kickRun()
}

// startSource creates a consumer for parts, from the first message none of
// them has seen. A failure leaves them without one: the next tidy retries.
func (e *engine) startSource(parts []*part) {
	start := time.Now()
	e.mu.Lock()
	from := parts[0].covered + 1
	filters := make([]string, 0, len(parts))
	for _, p := range parts {
		from = min(from, p.covered+1)
		filters = append(filters, p.subject)
	}
	e.mu.Unlock()
	slices.Sort(filters)
	s := &source{id: e.srcSeq.Add(1), filters: filters, start: from, pos: from - 1, created: start, lastMsg: start}
	s.name = consumerName(e.name, s.id)
	cc := jetstream.ConsumerConfig{
		Name: s.name, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from,
		AckPolicy: jetstream.AckNonePolicy, MemoryStorage: true, Replicas: 1,
		InactiveThreshold: 30 * time.Second,
		Metadata:          map[string]string{"parti-group": e.group, "parti-member": e.name},
	}
	if len(filters) == 1 {
		cc.FilterSubject = filters[0]
	} else {
		cc.FilterSubjects = filters
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.OpTimeout)
	cons, err := e.js.CreateConsumer(ctx, e.cfg.Stream, cc)
	cancel()
	if err == nil {
		s.cons = cons
		// Attach before consuming, so that no delivery finds its partition
		// without a source.
		e.mu.Lock()
		for _, p := range parts {
			if p.state == partActive && p.src == nil && !p.superseded {
				p.src = s
				s.n++
			}
		}
		e.sources[s] = struct{}{}
		e.mu.Unlock()
		var cc jetstream.ConsumeContext
		cc, err = cons.Consume(func(jm jetstream.Msg) { e.onMsg(s, jm) },
			// Short pull requests with frequent idle heartbeats: a
			// consumer lost with its server is noticed within seconds.
			jetstream.PullExpiry(consumeExpiry), jetstream.PullHeartbeat(consumeHeartbeat),
			jetstream.PullMaxMessages(pullBatch),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) { e.consumeErr(s, err) }))
		if err == nil {
			e.mu.Lock()
			s.cc = cc
			stopped := s.stopped
			e.mu.Unlock()
			if stopped { // replaced while it started
				e.stopSource(s)
			}
		}
	}
	if err != nil {
		e.mu.Lock()
		for _, p := range parts {
			if p.src == s {
				e.detach(p)
			}
		}
		s.stopped = true
		delete(e.sources, s)
		e.mu.Unlock()
		if permissionErr(e.nc, err) {
			e.fatal(wrapPermission(e.nc, "create-consumer", err))
			return
		}
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			e.fatal(fmt.Errorf("%w: stream %s: %w", ErrStream, e.cfg.Stream, err))
			return
		}
		e.errorf("create-consumer", err, "creating a consumer failed; retrying", "partitions", len(parts))
		return
	}
	pause := time.Since(start)
	e.cnt.reconfigs.Add(1)
	e.met.Reconfigured("consumer", pause)
	e.log.Debug("consumer started", "partitions", len(parts), "from", from, "took", pause)
}

// consumerName names a member's consumer: its ID (made one token) and the
// source's number.
func consumerName(member string, id uint64) string {
	return fmt.Sprintf("parti_%s_%d", subjectSafe(member), id)
}

func (e *engine) consumeErr(s *source, err error) {
	switch {
	case permissionErr(e.nc, err):
		e.fatal(wrapPermission(e.nc, "consume", err))
	case errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound):
		e.replace(s, "consumer-deleted")
	case errors.Is(err, jetstream.ErrNoHeartbeat):
		// The server lost it (a restart, a lost server of a cluster) or
		// the connection stalled.
		e.replace(s, "consumer-stalled")
	case errors.Is(err, nats.ErrConnectionClosed):
	default:
		// Replacing is cheap and always safe: the next one starts where
		// each partition got.
		e.errorf("consume", err, "a consumer reported an error; replacing it", "consumer", s.name)
		e.replace(s, "consumer-error")
	}
}

// replace takes a broken consumer's partitions off it and stops it: the
// control goroutine gives them a new one from where each got.
func (e *engine) replace(s *source, reason string) {
	e.mu.Lock()
	if s.stopped {
		e.mu.Unlock()
		return
	}
	for _, p := range e.parts {
		if p.src == s {
			e.detach(p)
		}
	}
	s.stopped = true
	delete(e.sources, s)
	e.mu.Unlock()
	if reason != "gap" {
		e.errorf(reason, errors.New(reason), "a consumer of the member broke; replacing it", "consumer", s.name)
	} else {
		e.log.Debug("a consumer skipped a delivery; replacing it", "consumer", s.name)
	}
	e.met.Reconfigured(reason, 0)
	e.stopSource(s)
	e.kickRun()
}

// stopSource stops a consumer and deletes it from the server.
func (e *engine) stopSource(s *source) {
	e.mu.Lock()
	cc := s.cc
	e.mu.Unlock()
	if cc == nil {
		return // not consuming yet: startSource stops it
	}
	cc.Stop()
	name := s.name
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.OpTimeout)
		defer cancel()
		if err := e.js.DeleteConsumer(ctx, e.cfg.Stream, name); err != nil &&
			!errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, nats.ErrConnectionClosed) {
			e.log.Debug("deleting a stopped consumer failed; the server removes it when inactive", "consumer", name, "err", err)
		}
	}()
}

// handOff ends the tenures of revoked partitions: it waits for their
// handlers (at most DrainTimeout), writes their final floors and lets them
// go. Past the drain timeout, or when a floor cannot be written, the member
// stops acting without releasing: the partitions move once it is expired.
func (e *engine) handOff(parts []*part) {
	deadline := time.Now().Add(e.cfg.DrainTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for _, p := range parts {
		select {
		case <-p.loaded:
		case <-ctx.Done():
		}
		if !e.waitIdle(ctx, p) {
			e.drainTimedOut(ErrDrainTimeout)
			return
		}
	}
	e.mu.Lock()
	write := !e.crashed && !e.fenced
	e.mu.Unlock()
	var failed atomic.Bool
	if write {
		// The floors get at least 10 operation time-outs, whatever the
		// handlers left of the drain time-out: a replicated stream may be
		// electing a leader. The member keeps the partitions meanwhile.
		wctx, wcancel := context.WithDeadline(context.Background(), latest(deadline, time.Now().Add(10*e.cfg.OpTimeout)))
		defer wcancel()
		e.parallel(len(parts), func(i int) {
			p := parts[i]
			if err := e.commit(wctx, p); err != nil && !errors.Is(err, ErrSettled) && !errors.Is(err, errSuperseded) {
				e.errorf("floor-write", err, "the final floor of a revoked partition could not be written", "partition", p.id)
				failed.Store(true)
			}
		})
	}
	if failed.Load() {
		e.drainTimedOut(ErrFloorWrite)
		return
	}
	e.mu.Lock()
	for _, p := range parts {
		e.letGo(p)
	}
	e.mu.Unlock()
}

// waitIdle waits until p has no handler running and no message unsettled.
func (e *engine) waitIdle(ctx context.Context, p *part) bool {
	e.mu.Lock()
	if p.busy == nil {
		e.mu.Unlock()
		return true
	}
	if p.idle == nil {
		p.idle = make(chan struct{})
	}
	ch := p.idle
	e.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	case <-e.fencedCh:
		return false
	}
}

// letGo ends a tenure. e.mu held.
func (e *engine) letGo(p *part) {
	p.unwatch()
	if p.retry != nil {
		p.retry.Stop()
	}
	clear(p.queue)
	p.queue = nil
	e.detach(p)
	if e.parts[p.id] == p {
		delete(e.parts, p.id)
	}
	select {
	case <-p.released:
	default:
		close(p.released)
		e.chunkUse[p.chunk] -= progressEntryBytes(p.id)
	}
}

// drainTimedOut stops the member without a release: handlers still run (or
// floors are unwritten), so the partitions may move only once the member is
// expired.
func (e *engine) drainTimedOut(why error) {
	e.mu.Lock()
	first := !e.fenced
	if first {
		e.fenced = true
		e.closing = true
		close(e.fencedCh)
		if e.err == nil {
			e.err = why
		}
	}
	running := e.running
	e.mu.Unlock()
	if first {
		op := "drain-timeout"
		if errors.Is(why, ErrFloorWrite) {
			op = "floor-write"
		}
		e.errorf(op, why, "a hand-off could not finish: stopping the member without releasing", "running", running, "timeout", e.cfg.DrainTimeout)
		go e.member.Stop()
	}
	<-e.member.Done()
}

// finalize stops every consumer and lets every remaining tenure go: called
// when the engine stops.
func (e *engine) finalize() {
	e.mu.Lock()
	e.closing = true
	var stop []*source
	for s := range e.sources {
		s.stopped = true
		stop = append(stop, s)
	}
	clear(e.sources)
	for _, p := range e.parts {
		p.cancel()
		e.letGo(p)
	}
	for _, p := range e.leaving {
		p.cancel()
		e.letGo(p)
	}
	e.leaving = nil
	crashed, fenced := e.crashed, e.fenced
	e.mu.Unlock()
	if !crashed && !fenced {
		// Every tenure ended with its own floor record written.
		e.clearProgress()
	}
	for _, s := range stop {
		if crashed {
			// As a crash would: the server removes them when inactive.
			e.mu.Lock()
			cc := s.cc
			e.mu.Unlock()
			if cc != nil {
				cc.Stop()
			}
			continue
		}
		e.stopSource(s)
	}
}

// audit checks each consumer against what it should be: one deleted or
// changed from outside is replaced (its partitions resume where they got).
func (e *engine) audit() {
	e.mu.Lock()
	var srcs []*source
	for s := range e.sources {
		srcs = append(srcs, s)
	}
	e.mu.Unlock()
	for _, s := range srcs {
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.OpTimeout)
		info, err := e.js.Consumer(ctx, e.cfg.Stream, s.name)
		cancel()
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound) || apiCode(err) == codeNotFound:
			e.replace(s, "consumer-deleted")
		case err != nil:
			if permissionErr(e.nc, err) {
				e.fatal(wrapPermission(e.nc, "check-consumer", err))
				return
			}
			e.errorf("check-consumer", err, "checking a consumer failed", "consumer", s.name)
			return
		default:
			c := info.CachedInfo().Config
			got := gatherFilters(c)
			slices.Sort(got)
			if !slices.Equal(got, s.filters) || c.AckPolicy != jetstream.AckNonePolicy {
				e.replace(s, "consumer-changed")
			}
		}
	}
	if len(srcs) > 0 {
		e.cnt.checks.Add(1)
	}
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func gatherFilters(c jetstream.ConsumerConfig) []string {
	if c.FilterSubject != "" {
		return append([]string{c.FilterSubject}, c.FilterSubjects...)
	}
	return slices.Clone(c.FilterSubjects)
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
