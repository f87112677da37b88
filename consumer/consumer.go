package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
)

// Consumer is a running helper: a group member that consumes the partitions
// it owns. Its methods are safe for concurrent use.
type Consumer struct {
	e      *engine
	m      *parti.Member
	closed chan struct{}
}

// Join joins the group described by member, as parti.Join does, and
// consumes the partitions the member owns from cfg.Stream: it follows every
// assignment change until Leave, Close or Stop, or until ctx ends (ctx
// bounds the member's whole life, as for parti.Join).
//
// Before joining it makes sure the helper's streams exist: the work queue
// that sources cfg.Stream (created with the stream's replicas and storage)
// and, unless cfg.DeadLetter is set, the dead-letter stream. member.Handler,
// if set, is still called: Assigned before consumption starts, Revoked after
// it stopped.
func Join(ctx context.Context, js jetstream.JetStream, member parti.Config, cfg Config) (*Consumer, error) {
	if err := member.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(member.Group); err != nil {
		return nil, err
	}
	cfg.setDefaults(member.Group, member.Logger)
	var tmpl template
	if cfg.SubjectFunc == nil {
		tmpl, _ = parseTemplate(cfg.Subject)
	}
	e := newEngine(js, member.Group, cfg, tmpl)
	for _, p := range member.Partitions {
		s := e.subjectOf(p)
		if cfg.SubjectFunc == nil && !validToken(p) {
			return nil, fieldErr("Subject", "cannot hold partition %q (not one subject token): set SubjectFunc and PartitionOf", p)
		}
		if !validSubject(s, false) || !subjectMatches(cfg.SourceFilter, s) {
			return nil, fieldErr("SourceFilter", "%q does not cover partition %q's subject %q", cfg.SourceFilter, p, s)
		}
		if e.partitionOf(s) != p {
			return nil, fieldErr("PartitionOf", "maps %q to %q, not to its partition %q", s, e.partitionOf(s), p)
		}
	}
	wq, err := ensureStreams(ctx, js, member.Group, &cfg)
	if err != nil {
		return nil, err
	}
	e.wq = wq
	if n := len(member.Partitions); n > 0 {
		e.nshards = (n + cfg.FiltersPerConsumer - 1) / cfg.FiltersPerConsumer
	}
	user := member.Handler
	member.Handler = adapter{e: e, user: user}
	go e.run()
	m, err := parti.Join(ctx, js, member)
	if err != nil {
		e.requestStop()
		<-e.done
		return nil, err
	}
	e.member = m
	e.name = m.ID()
	close(e.ready)
	c := &Consumer{e: e, m: m, closed: make(chan struct{})}
	go func() {
		<-e.done
		<-m.Done()
		close(c.closed)
	}()
	return c, nil
}

// ensureStreams finds the user's stream and creates (or checks) the work
// queue and the default dead-letter stream.
func ensureStreams(ctx context.Context, js jetstream.JetStream, group string, cfg *Config) (jetstream.Stream, error) {
	nc := js.Conn()
	src, err := js.Stream(ctx, cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("consumer: stream %s: %w", cfg.Stream, wrapPermission(nc, "stream-info", err))
	}
	si := src.CachedInfo().Config
	wcfg := jetstream.StreamConfig{
		Name:        cfg.WorkQueue,
		Description: "parti group " + group + ": work queue of " + cfg.Stream,
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     si.Storage,
		Replicas:    si.Replicas,
		Sources:     []*jetstream.StreamSource{{Name: cfg.Stream, FilterSubject: cfg.SourceFilter}},
		// Members' consumers (a few per member) may outnumber the server's
		// default limit of 1,000 per stream.
		MaxConsumers: 100_000,
	}
	if cfg.StartNew {
		now := time.Now()
		wcfg.Sources[0].OptStartTime = &now
	}
	wq, err := js.Stream(ctx, cfg.WorkQueue)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		wq, err = js.CreateStream(ctx, wcfg)
		if err != nil && !permissionErr(nc, err) {
			// An account limit may refuse the consumer limit: fall back to
			// the server's default.
			wcfg.MaxConsumers = 0
			wq, err = js.CreateStream(ctx, wcfg)
		}
		if err != nil {
			// Another member may have created it meanwhile.
			if w, err2 := js.Stream(ctx, cfg.WorkQueue); err2 == nil {
				wq, err = w, nil
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("consumer: work queue %s: %w", cfg.WorkQueue, wrapPermission(nc, "create-stream", err))
	}
	got := wq.CachedInfo().Config
	if got.Retention != jetstream.WorkQueuePolicy || !slices.ContainsFunc(got.Sources, func(s *jetstream.StreamSource) bool {
		return s.Name == cfg.Stream && s.FilterSubject == cfg.SourceFilter
	}) {
		return nil, fmt.Errorf("%w: stream %s exists but is not a work queue sourcing %s with filter %q", ErrWorkQueue, cfg.WorkQueue, cfg.Stream, cfg.SourceFilter)
	}
	if cfg.defaultDeadLetter() {
		name := cfg.WorkQueue + "_DLQ"
		dl := cfg.deadLetterTemplate(group)
		subj := dl[:len(dl)-len(Placeholder)] + ">"
		if _, err := js.Stream(ctx, name); errors.Is(err, jetstream.ErrStreamNotFound) {
			_, err = js.CreateStream(ctx, jetstream.StreamConfig{
				Name: name, Description: "parti group " + group + ": dead letters of " + cfg.Stream,
				Subjects: []string{subj}, Storage: si.Storage, Replicas: si.Replicas,
			})
			if err != nil {
				if _, err2 := js.Stream(ctx, name); err2 != nil {
					return nil, fmt.Errorf("consumer: dead-letter stream %s: %w", name, wrapPermission(nc, "create-stream", err))
				}
			}
		} else if err != nil {
			return nil, fmt.Errorf("consumer: dead-letter stream %s: %w", name, wrapPermission(nc, "stream-info", err))
		}
	}
	return wq, nil
}

// adapter is the member's Handler: it feeds assignment changes to the
// engine.
type adapter struct {
	e    *engine
	user parti.Handler
}

// Assigned implements parti.Handler: consumption starts in the background.
func (h adapter) Assigned(a parti.Assignment) {
	if h.user != nil {
		h.user.Assigned(a)
	}
	h.e.assign(a)
}

// Revoked implements parti.Handler: it returns once the partition's
// handlers returned, their acknowledgements were confirmed and the member's
// consumer no longer covers it, so the release the member appends next lets
// the new owner start at the first unacknowledged message.
func (h adapter) Revoked(a parti.Assignment, why parti.RevokeReason) {
	h.e.revoke(a)
	if h.user != nil {
		h.user.Revoked(a, why)
	}
}

// Member returns the group member the helper runs.
func (c *Consumer) Member() *parti.Member { return c.m }

// Stats returns the helper's counters.
func (c *Consumer) Stats() Stats { return c.e.stats() }

// Done is closed once the helper and its member have stopped.
func (c *Consumer) Done() <-chan struct{} { return c.closed }

// Err returns why the helper stopped: its own error (ErrPermission,
// ErrDrainTimeout, ErrWorkQueue) or the member's (parti.ErrStopped after
// Leave or Close); nil while it runs.
func (c *Consumer) Err() error {
	if err := c.e.Err(); err != nil {
		return err
	}
	return c.m.Err()
}

// Leave hands every partition off (each once its handlers returned and their
// acknowledgements are confirmed), leaves the group and returns once the
// helper stopped or ctx ends.
func (c *Consumer) Leave(ctx context.Context) error {
	if err := c.m.Leave(ctx); err != nil {
		return err
	}
	return c.wait(ctx)
}

// Close closes for a restart: it stops consuming (handlers return,
// acknowledgements are confirmed), deletes the member's consumer and closes
// the member, which keeps its ID and partitions for the grace period: a
// process that joins with the same ID within the grace resumes them where
// this one stopped, without a duplicate.
func (c *Consumer) Close(ctx context.Context) error {
	e := c.e
	e.mu.Lock()
	e.closing = true
	e.mu.Unlock()
	e.requestStop()
	if err := c.wait(ctx); err != nil {
		return err
	}
	if err := c.m.Close(ctx); err != nil {
		return err
	}
	return nil
}

// Stop stops at once, as a crash would, except that running handlers are
// waited for (their contexts are cancelled): the member does not tell the
// group, and the member's consumer is left for the next owners to clean up.
// Messages in flight are delivered again to the partitions' next owners.
func (c *Consumer) Stop() {
	e := c.e
	e.mu.Lock()
	e.keepCons = true
	e.closing = true
	e.mu.Unlock()
	c.m.Stop()
	<-e.done
}

func (c *Consumer) wait(ctx context.Context) error {
	select {
	case <-c.e.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
