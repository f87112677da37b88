package consumer

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The control goroutine gathers the assignment changes of one rebalance
// (the member cancels every revoked assignment in one pass, then assigns in
// one pass, and releases arrive one after another) into one change of the
// consumers: it waits for a quiet spell, within a bound.
const (
	quietSpell = 2 * time.Millisecond
	maxGather  = 20 * time.Millisecond
)

// parallelRebuilds bounds the shards rebuilt at once.
const parallelRebuilds = 8

// run is the control goroutine: it changes the member's consumers when the
// owned set changes, checks them, and keeps held messages alive.
func (e *engine) run() {
	defer close(e.done)
	select {
	case <-e.ready:
	case <-e.stopReq:
		e.finalize()
		return
	}
	var audit <-chan time.Time
	if e.cfg.CheckInterval > 0 {
		t := time.NewTicker(e.cfg.CheckInterval)
		defer t.Stop()
		audit = t.C
	}
	e.park()
	keep := time.NewTicker(max(e.cfg.AckWait/6, 50*time.Millisecond))
	defer keep.Stop()
	memberDone := e.member.Done()
	for {
		select {
		case <-e.kick:
			deadline := time.NewTimer(maxGather)
			quiet := time.NewTimer(quietSpell)
		gather:
			for {
				select {
				case <-e.kick:
					quiet.Reset(quietSpell)
				case <-quiet.C:
					break gather
				case <-deadline.C:
					break gather
				}
			}
			deadline.Stop()
			quiet.Stop()
			if !e.reconcile() {
				e.finalize()
				return
			}
		case <-audit:
			e.audit()
		case <-keep.C:
			e.keepAlive()
		case <-memberDone:
			// Every assignment context ended with the member: let all go.
			e.mu.Lock()
			e.closing = true
			e.mu.Unlock()
			e.reconcile()
			e.finalize()
			return
		case <-e.stopReq:
			e.mu.Lock()
			e.closing = true
			for _, p := range e.parts {
				p.cancel()
			}
			e.mu.Unlock()
			e.reconcile()
			e.finalize()
			return
		}
	}
}

// maxParked bounds the consumers parked ahead of any assignment.
const maxParked = 16

// park creates the member's consumers, covering nothing, before the first
// assignment arrives (during the join's window), so that every later change
// is an update: on a cluster a creation costs a raft group, hundreds of
// milliseconds. Only when the partition set is known and small enough.
func (e *engine) park() {
	e.mu.Lock()
	n := e.nshards
	var shards []*shard
	if n > 0 && n <= maxParked {
		for i := range n {
			shards = append(shards, e.shardOf(uint32(i)))
		}
	}
	e.mu.Unlock()
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallelRebuilds)
	for _, sh := range shards {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			e.ensureConsumer(sh, nil)
		}()
	}
	wg.Wait()
}

// stopping reports whether retrying a request should give up: the helper
// is stopping, or the member stopped (no release can follow any more).
func (e *engine) stopping() bool {
	select {
	case <-e.stopReq:
		return true
	case <-e.member.Done():
		return true
	default:
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fenced || e.err != nil
}

func (e *engine) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-e.stopReq:
	}
}

// change is what one shard's rebuild has to do.
type change struct {
	sh       *shard
	want     []string
	revoking []*part
	reason   string
}

// reconcile brings the member's consumers in line with the owned
// partitions, rebuilding the shards whose set changed. It returns false when
// the engine must stop (drain timeout).
func (e *engine) reconcile() bool {
	e.mu.Lock()
	if e.fenced {
		e.mu.Unlock()
		return false
	}
	changes := map[*shard]*change{}
	get := func(sh *shard) *change {
		c := changes[sh]
		if c == nil {
			c = &change{sh: sh}
			changes[sh] = c
		}
		return c
	}
	for _, sh := range e.shards {
		get(sh)
	}
	for _, p := range e.parts {
		if p.state != partRevoking && (p.ctx.Err() != nil || e.closing) {
			p.state = partRevoking
			p.cancel()
		}
		if p.sh == nil {
			if p.state == partRevoking {
				e.letGo(p) // never consumed
				continue
			}
			p.sh = e.shardOf(p.a.Index)
		}
		c := get(p.sh)
		if p.state == partRevoking {
			c.revoking = append(c.revoking, p)
		} else {
			c.want = append(c.want, p.subject)
		}
	}
	for _, p := range e.leaving {
		if p.sh == nil {
			e.letGo(p)
			continue
		}
		get(p.sh).revoking = append(get(p.sh).revoking, p)
	}
	e.leaving = nil
	var todo []*change
	for sh, c := range changes {
		slices.Sort(c.want)
		c.want = slices.Compact(c.want)
		reasons := sh.force
		sh.force = nil
		cleanup := e.closing && !e.keepCons && sh.exists
		if !cleanup && len(reasons) == 0 && slices.Equal(c.want, sh.current) && (len(c.want) == 0 || sh.haveCons) {
			// Only partitions that were never consumed are let go.
			for _, p := range c.revoking {
				e.letGo(p)
			}
			continue
		}
		switch {
		case len(reasons) > 0:
			c.reason = reasons[0]
		case len(c.revoking) > 0:
			c.reason = "revoke"
		default:
			c.reason = "assign"
		}
		e.quiesce(sh)
		todo = append(todo, c)
	}
	e.mu.Unlock()
	if len(todo) == 0 {
		return true
	}
	sem := make(chan struct{}, parallelRebuilds)
	var wg sync.WaitGroup
	for _, c := range todo {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			e.rebuild(c)
		}()
	}
	wg.Wait()
	if e.isFenced() {
		return false
	}
	e.mu.Lock()
	n := 0
	for _, p := range e.parts {
		if p.state == partActive {
			n++
		}
	}
	e.mu.Unlock()
	e.met.Partitions(n)
	return true
}

// quiesce stops a shard from starting handlers and drops what it holds (its
// next consumer delivers it again). e.mu held.
func (e *engine) quiesce(sh *shard) {
	sh.quiescing = true
	sh.epoch++
	for _, p := range e.parts {
		if p.sh != sh {
			continue
		}
		for i := range p.queue {
			p.queue[i] = nil
		}
		p.queue = p.queue[:0]
		clear(p.deferred)
		if p.state == partActive {
			p.state = partPending
		}
	}
	e.slotQueue = slices.DeleteFunc(e.slotQueue, func(p *part) bool {
		if p.sh == sh {
			p.waitingSlot = false
			return true
		}
		return false
	})
}

// rebuild replaces a quiesced shard's consumer: stop consuming, wait for its
// handlers, confirm their acknowledgements, delete the consumer, let the
// revoked partitions go, and create the consumer over the partitions it
// keeps.
func (e *engine) rebuild(c *change) {
	sh := c.sh
	start := time.Now()
	e.mu.Lock()
	cc := sh.cc
	sh.cc = nil
	keep := e.keepCons
	e.mu.Unlock()
	if cc != nil {
		cc.Stop()
		t := time.NewTimer(e.cfg.OpTimeout)
		select {
		case <-cc.Closed():
		case <-t.C:
		}
		t.Stop()
	}
	if !e.waitIdle(sh) {
		e.drainTimedOut()
		return
	}
	e.confirmAsync(sh)
	closing := e.isClosing()
	var cons jetstream.Consumer
	switch {
	case closing:
		// Stopping: the consumer goes, unless a crash-like Stop leaves it
		// for the next owners to clean up.
		if !keep {
			e.deleteConsumer(sh.name)
			e.mu.Lock()
			sh.exists = false
			e.mu.Unlock()
		}
	case len(c.want) == 0:
		// Nothing left to cover: park the consumer on a subject no message
		// has, so that covering partitions again is an update rather than
		// a creation (on a cluster a creation costs a raft group).
		e.ensureConsumer(sh, nil)
	default:
		// Cover exactly want from the first message left in the work
		// queue: everything acknowledged is gone from it, so nothing is
		// delivered twice and each partition resumes at its first
		// unacknowledged message.
		cons = e.ensureConsumer(sh, c.want)
	}
	e.mu.Lock()
	sh.haveCons, sh.current = false, nil
	sh.gen++
	for _, p := range c.revoking {
		e.letGo(p)
	}
	e.mu.Unlock()
	if cons != nil {
		e.consume(sh, cons, c.want)
	}
	e.mu.Lock()
	sh.quiescing = false
	for _, p := range e.parts {
		if p.sh == sh {
			e.pump(p)
		}
	}
	e.mu.Unlock()
	pause := time.Since(start)
	e.cnt.reconfigs.Add(1)
	e.met.Reconfigured(c.reason, pause)
	e.log.Debug("consumer rebuilt", "consumer", sh.name, "reason", c.reason, "partitions", len(c.want), "released", len(c.revoking), "pause", pause)
}

// letGo ends a tenure. e.mu held.
func (e *engine) letGo(p *part) {
	p.unwatch()
	if p.retry != nil {
		p.retry.Stop()
	}
	if e.parts[p.id] == p {
		delete(e.parts, p.id)
	}
	select {
	case <-p.released:
	default:
		close(p.released)
	}
}

func (e *engine) isClosing() bool { e.mu.Lock(); defer e.mu.Unlock(); return e.closing }
func (e *engine) isFenced() bool  { e.mu.Lock(); defer e.mu.Unlock(); return e.fenced }

// waitIdle waits until no handler of the shard runs (and no manual-ack
// message is unsettled), at most DrainTimeout.
func (e *engine) waitIdle(sh *shard) bool {
	e.mu.Lock()
	if sh.running == 0 {
		e.mu.Unlock()
		return true
	}
	ch := make(chan struct{})
	sh.idle = ch
	e.mu.Unlock()
	t := time.NewTimer(e.cfg.DrainTimeout)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	case <-e.fencedCh:
		return false
	}
}

// drainTimedOut stops the member without a release: handlers still run, so
// the partitions may move only once the member is expired.
func (e *engine) drainTimedOut() {
	e.mu.Lock()
	first := !e.fenced
	if first {
		e.fenced = true
		e.closing = true
		close(e.fencedCh)
		if e.err == nil {
			e.err = ErrDrainTimeout
		}
	}
	running := e.running
	e.mu.Unlock()
	if first {
		e.errorf("drain-timeout", ErrDrainTimeout, "handlers did not return in time: stopping the member without releasing", "running", running, "timeout", e.cfg.DrainTimeout)
		go e.member.Stop()
	}
	<-e.member.Done()
}

// finalize lets every remaining tenure go: called when the engine stops,
// after the member stopped or the consumers were deleted.
func (e *engine) finalize() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closing = true
	for _, sh := range e.shards {
		if sh.cc != nil {
			sh.cc.Stop()
			sh.cc = nil
		}
	}
	for _, p := range e.parts {
		p.cancel()
		e.letGo(p)
	}
	for _, p := range e.leaving {
		p.cancel()
		e.letGo(p)
	}
	e.leaving = nil
}

// confirmAsync makes sure every asynchronous acknowledgement of the shard
// was processed: acknowledging the last one again as a request is answered
// only after the earlier ones (they share the consumer's acknowledgement
// queue).
func (e *engine) confirmAsync(sh *shard) {
	e.mu.Lock()
	jm, dirty := sh.lastAsync, sh.asyncDirty
	sh.asyncDirty = false
	e.mu.Unlock()
	if dirty && jm != nil {
		_ = e.confirmAck(jm, "")
	}
}

func (e *engine) opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), e.cfg.OpTimeout)
}

// deleteConsumer deletes a consumer of the member, retrying until it is gone
// or the engine stops. Only then may its partitions be released: another
// member's consumer on the work queue may not overlap it.
func (e *engine) deleteConsumer(name string) {
	for i := 0; ; i++ {
		ctx, cancel := e.opCtx()
		err := e.wq.DeleteConsumer(ctx, name)
		cancel()
		if err == nil || errors.Is(err, jetstream.ErrConsumerNotFound) || apiCode(err) == codeNotFound ||
			errors.Is(err, nats.ErrConnectionClosed) {
			return
		}
		if permissionErr(e.nc, err) {
			e.fatal(wrapPermission(e.nc, "delete-consumer", err))
			return
		}
		if apiCode(err) == codeStreamGone || errors.Is(err, jetstream.ErrStreamNotFound) {
			e.fatal(errWorkQueueGone(e.cfg.WorkQueue))
			return
		}
		e.errorf("delete-consumer", err, "deleting a consumer of the member failed; retrying", "consumer", name)
		if e.stopping() {
			return
		}
		e.sleep(retryWait(i))
	}
}

func retryWait(i int) time.Duration {
	return min(50*time.Millisecond<<min(i, 6), 2*time.Second)
}

func errWorkQueueGone(name string) error {
	return errors.Join(ErrWorkQueue, errors.New("consumer: work queue "+name+" was deleted"))
}

func (e *engine) consumerConfig(sh *shard, want []string) jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		Durable:       sh.name,
		Description:   "parti group " + e.group + ": member " + e.name,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       e.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: e.cfg.Prefetch,
		// The work queue keeps what is not acknowledged; the consumer's own
		// state is disposable, so it need not touch the disk.
		MemoryStorage: true,
		Metadata: map[string]string{
			"parti.group":       e.group,
			"parti.member":      e.name,
			"parti.incarnation": strconv.FormatUint(e.member.Incarnation(), 10),
		},
	}
	switch len(want) {
	case 0:
		cfg.FilterSubject = e.idleSubject(sh)
	case 1:
		cfg.FilterSubject = want[0]
	default:
		cfg.FilterSubjects = want
	}
	return cfg
}

// idleSubject is the filter of a consumer that covers nothing.
func (e *engine) idleSubject(sh *shard) string {
	return "_parti_idle." + e.group + "." + sh.name
}

// ensureConsumer makes the shard's consumer cover exactly want, starting
// over from the first message of the work queue: an update of the filters
// followed by a reset (neither creates a replicated consumer, which on a
// cluster costs a raft group), or a creation when the consumer is missing.
// It returns nil when it gave up (the engine is stopping).
func (e *engine) ensureConsumer(sh *shard, want []string) jetstream.Consumer {
	cfg := e.consumerConfig(sh, want)
	// The server checks the filters against each other and against every
	// other consumer of the work queue: allow for big ones.
	timeout := e.cfg.OpTimeout + time.Duration(len(want))*time.Millisecond
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		c, err := e.wq.UpdateConsumer(ctx, cfg)
		if err == nil {
			_, err = e.js.ResetConsumerToSequence(ctx, e.cfg.WorkQueue, sh.name, 1)
			if err != nil && !permissionErr(e.nc, err) && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				// A server without resets, or a consumer that cannot take
				// this update: replace it.
				e.log.Debug("resetting a consumer failed; recreating it", "consumer", sh.name, "err", err)
				e.deleteConsumer(sh.name)
				c, err = e.wq.CreateConsumer(ctx, cfg)
			}
		} else if errors.Is(err, jetstream.ErrConsumerDoesNotExist) || errors.Is(err, jetstream.ErrConsumerNotFound) || apiCode(err) == codeNotFound {
			c, err = e.wq.CreateConsumer(ctx, cfg)
		} else if apiCode(err) != codeWQNotUnique && !permissionErr(e.nc, err) && apiCode(err) != 0 {
			// The server refuses this update (a field that cannot change):
			// replace the consumer.
			e.deleteConsumer(sh.name)
			c, err = e.wq.CreateConsumer(ctx, cfg)
		}
		cancel()
		if err == nil {
			e.mu.Lock()
			sh.exists = true
			e.mu.Unlock()
			return c
		}
		switch {
		case apiCode(err) == codeWQNotUnique:
			if e.clearOverlaps(sh, want) > 0 {
				continue
			}
		case permissionErr(e.nc, err):
			e.fatal(wrapPermission(e.nc, "create-consumer", err))
			return nil
		case apiCode(err) == codeStreamGone || errors.Is(err, jetstream.ErrStreamNotFound):
			e.fatal(errWorkQueueGone(e.cfg.WorkQueue))
			return nil
		default:
			e.errorf("create-consumer", err, "setting up a consumer of the member failed; retrying", "consumer", sh.name)
		}
		if e.stopping() {
			return nil
		}
		e.sleep(retryWait(i))
	}
}

// consume starts consuming from the shard's consumer, which covers want.
func (e *engine) consume(sh *shard, cons jetstream.Consumer, want []string) {
	e.mu.Lock()
	epoch := sh.epoch
	sh.haveCons, sh.current = true, want
	for _, p := range e.parts {
		if p.sh == sh && p.state == partPending && p.ctx.Err() == nil && slices.Contains(want, p.subject) {
			p.state = partActive
		}
	}
	e.mu.Unlock()
	cc, err := cons.Consume(func(jm jetstream.Msg) { e.onMsg(sh, epoch, jm) },
		jetstream.PullMaxMessages(min(e.cfg.Prefetch, 10000)),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) { e.consumeErr(sh, epoch, err) }))
	if err != nil {
		if permissionErr(e.nc, err) {
			e.fatal(wrapPermission(e.nc, "consume", err))
			return
		}
		e.errorf("consume", err, "starting to consume failed; rebuilding", "consumer", sh.name)
		e.markForce(sh, "consume-failed")
		return
	}
	e.mu.Lock()
	if sh.epoch == epoch {
		sh.cc = cc
	} else {
		cc.Stop()
	}
	e.mu.Unlock()
}

func (e *engine) consumeErr(sh *shard, epoch uint64, err error) {
	e.mu.Lock()
	stale := epoch != sh.epoch
	e.mu.Unlock()
	if stale {
		return
	}
	switch {
	case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
		e.errorf("consumer-deleted", err, "a consumer of the member was deleted from outside; recreating it", "consumer", sh.name)
		e.markForce(sh, "consumer-deleted")
	case errors.Is(err, jetstream.ErrNoHeartbeat):
		e.errorf("consume", err, "no heartbeat from a consumer of the member", "consumer", sh.name)
	case permissionErr(e.nc, err):
		e.fatal(wrapPermission(e.nc, "consume", err))
	case errors.Is(err, jetstream.ErrConnectionClosed):
	default:
		e.errorf("consume", err, "consuming reported an error", "consumer", sh.name)
	}
}

// clearOverlaps deletes the consumers on the work queue that cover a subject
// in want and belong to a member incarnation the fold no longer holds (a
// crashed or expired member, or an earlier incarnation of this one); it
// returns how many it deleted.
func (e *engine) clearOverlaps(sh *shard, want []string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 4*e.cfg.OpTimeout)
	defer cancel()
	wanted := make(map[string]bool, len(want))
	for _, w := range want {
		wanted[w] = true
	}
	st := e.member.State()
	myInc := strconv.FormatUint(e.member.Incarnation(), 10)
	lister := e.wq.ListConsumers(ctx)
	var stale []string
	for info := range lister.Info() {
		if info.Name == sh.name {
			continue
		}
		filters := info.Config.FilterSubjects
		if info.Config.FilterSubject != "" {
			filters = append(filters, info.Config.FilterSubject)
		}
		if !overlaps(filters, wanted) {
			continue
		}
		md := info.Config.Metadata
		if md["parti.group"] != e.group {
			e.log.Error("a consumer that parti did not create overlaps this member's partitions on the work queue", "consumer", info.Name)
			continue
		}
		id, inc := md["parti.member"], md["parti.incarnation"]
		n, _ := strconv.ParseUint(inc, 10, 64)
		if id != "" && !(id == e.name && inc != myInc) && st.Incarnation(id, n) != nil {
			e.log.Info("waiting for another member to let go of partitions", "consumer", info.Name, "member", id, "inc", inc)
			continue
		}
		stale = append(stale, info.Name)
	}
	if err := lister.Err(); err != nil {
		e.errorf("list-consumers", err, "listing the work queue's consumers failed")
	}
	n := 0
	for _, name := range stale {
		err := e.wq.DeleteConsumer(ctx, name)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			e.errorf("delete-consumer", err, "deleting a stale consumer failed", "consumer", name)
			continue
		}
		e.log.Info("deleted the consumer of a member incarnation that is gone", "consumer", name)
		n++
	}
	return n
}

func overlaps(filters []string, wanted map[string]bool) bool {
	for _, f := range filters {
		if wanted[f] {
			return true
		}
		if validSubject(f, false) {
			continue
		}
		for w := range wanted {
			if subjectMatches(f, w) {
				return true
			}
		}
	}
	return false
}

// audit checks the member's consumers against what they should be and
// rebuilds one that was deleted or changed from outside.
func (e *engine) audit() {
	type check struct {
		sh   *shard
		want []string
	}
	var checks []check
	e.mu.Lock()
	for _, sh := range e.shards {
		if sh.haveCons && !sh.quiescing {
			checks = append(checks, check{sh, sh.current})
		}
	}
	e.mu.Unlock()
	for _, c := range checks {
		ctx, cancel := e.opCtx()
		cons, err := e.wq.Consumer(ctx, c.sh.name)
		cancel()
		switch {
		case err == nil:
		case errors.Is(err, jetstream.ErrConsumerNotFound) || apiCode(err) == codeNotFound:
			e.errorf("consumer-deleted", err, "a consumer of the member is gone; recreating it", "consumer", c.sh.name)
			e.markForce(c.sh, "consumer-deleted")
			continue
		case errors.Is(err, jetstream.ErrStreamNotFound) || apiCode(err) == codeStreamGone:
			e.fatal(errWorkQueueGone(e.cfg.WorkQueue))
			e.kickRun()
			return
		case permissionErr(e.nc, err):
			e.fatal(wrapPermission(e.nc, "check-consumer", err))
			e.kickRun()
			return
		default:
			e.errorf("check-consumer", err, "checking a consumer of the member failed", "consumer", c.sh.name)
			continue
		}
		got := cons.CachedInfo().Config
		if diff := configDiff(e.consumerConfig(c.sh, c.want), got); diff != "" {
			e.errorf("consumer-changed", errors.New(diff), "a consumer of the member was changed from outside; recreating it", "consumer", c.sh.name)
			e.markForce(c.sh, "consumer-changed")
		}
	}
}

// configDiff names the first field of got that differs from want in what
// the helper relies on.
func configDiff(want, got jetstream.ConsumerConfig) string {
	wf := gatherFilters(want)
	gf := gatherFilters(got)
	switch {
	case !slices.Equal(wf, gf):
		return "filter subjects"
	case got.AckPolicy != want.AckPolicy:
		return "ack policy"
	case got.DeliverPolicy != want.DeliverPolicy:
		return "deliver policy"
	case got.MaxAckPending != want.MaxAckPending:
		return "max ack pending"
	case got.AckWait != want.AckWait:
		return "ack wait"
	case got.MaxDeliver > 0:
		return "max deliver"
	case got.PauseUntil != nil && got.PauseUntil.After(time.Now()):
		return "paused"
	}
	return ""
}

func gatherFilters(c jetstream.ConsumerConfig) []string {
	f := slices.Clone(c.FilterSubjects)
	if c.FilterSubject != "" {
		f = append(f, c.FilterSubject)
	}
	slices.Sort(f)
	return f
}
