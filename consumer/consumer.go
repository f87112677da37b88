package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
	"github.com/parti-io/parti/internal/jsretry"
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
// Before joining it makes sure the helper's streams exist: the floor stream
// (created with cfg.Stream's replicas) and, unless cfg.DeadLetter is set,
// the dead-letter stream. member.Handler, if set, is still called: Assigned
// before consumption starts, Revoked after it stopped.
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
	seen := make(map[string]string, len(member.Partitions))
	for _, p := range member.Partitions {
		s := e.subjectOf(p)
		if cfg.SubjectFunc == nil && !validToken(p) {
			return nil, fieldErr("Subject", "cannot hold partition %q (not one subject token): set SubjectFunc and PartitionOf", p)
		}
		if !validSubject(s, false) {
			return nil, fieldErr("SubjectFunc", "maps partition %q to %q, not a literal subject", p, s)
		}
		if e.partitionOf(s) != p {
			return nil, fieldErr("PartitionOf", "maps %q to %q, not to its partition %q", s, e.partitionOf(s), p)
		}
		if o, dup := seen[s]; dup {
			return nil, fieldErr("SubjectFunc", "maps partitions %q and %q to the same subject %q", o, p, s)
		}
		seen[s] = p
	}
	// A replicated stream being created or electing a leader answers
	// with time-outs for a while: retry those for 30 s, as parti.Join does.
	var (
		floors jetstream.Stream
		origin uint64
	)
	err := jsretry.DoEach(ctx, cfg.Logger, 30*time.Second, 2*cfg.OpTimeout, transient, func(octx context.Context) error {
		var err error
		floors, origin, err = ensureStreams(octx, js, member.Group, &cfg)
		return err
	})
	if err != nil {
		return nil, err
	}
	e.floors, e.origin = floors, origin
	e.progTTL = floors.CachedInfo().Config.AllowMsgTTL
	e.progBudget = progressBudget(e.nc.MaxPayload(), floors.CachedInfo().Config.MaxMsgSize)
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

// transient reports whether setting up the streams may succeed if retried:
// never after a permission error or an unusable floor stream.
func transient(err error) bool {
	return !errors.Is(err, ErrPermission) && !errors.Is(err, ErrFloorStream) && jsretry.Transient(err)
}

// originKey is the floor stream's metadata entry holding the floor of
// partitions that never had one.
const originKey = "parti-origin"

// ensureStreams checks the user's stream and creates (or checks) the floor
// stream and the default dead-letter stream. It returns the floor stream and
// the origin: the floor of a partition that never had one.
func ensureStreams(ctx context.Context, js jetstream.JetStream, group string, cfg *Config) (jetstream.Stream, uint64, error) {
	nc := js.Conn()
	src, err := js.Stream(ctx, cfg.Stream)
	if err != nil {
		return nil, 0, fmt.Errorf("consumer: stream %s: %w", cfg.Stream, wrapPermission(nc, "stream-info", err))
	}
	si := src.CachedInfo()
	subj := floorPrefix(cfg.FloorStream) + ".>"
	origin := uint64(0)
	if cfg.StartNew {
		origin = si.State.LastSeq
	}
	fcfg := jetstream.StreamConfig{
		Name:              cfg.FloorStream,
		Description:       "parti group " + group + ": the floor of each partition of " + cfg.Stream,
		Subjects:          []string{subj},
		MaxMsgsPerSubject: 1,
		Storage:           jetstream.FileStorage,
		Replicas:          si.Config.Replicas,
		// Reads go to the stream's leader: a floor read must see the last
		// write (the write fence catches a stale read anyway).
		AllowDirect: false,
		// Progress records expire (progress.go); floor records carry no
		// TTL and never do.
		AllowMsgTTL: true,
		Metadata:    map[string]string{originKey: strconv.FormatUint(origin, 10)},
	}
	fs, err := js.Stream(ctx, cfg.FloorStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		fs, err = js.CreateStream(ctx, fcfg)
		if err != nil {
			// Another member may have created it meanwhile.
			if f, err2 := js.Stream(ctx, cfg.FloorStream); err2 == nil {
				fs, err = f, nil
			}
		}
	}
	if err != nil {
		return nil, 0, fmt.Errorf("consumer: floor stream %s: %w", cfg.FloorStream, wrapPermission(nc, "create-stream", err))
	}
	got := fs.CachedInfo().Config
	if got.MaxMsgsPerSubject != 1 || !slices.Contains(got.Subjects, subj) {
		return nil, 0, fmt.Errorf("%w: stream %s exists but does not keep one message per subject of %s", ErrFloorStream, cfg.FloorStream, subj)
	}
	if v, ok := got.Metadata[originKey]; ok {
		if origin, err = strconv.ParseUint(v, 10, 64); err != nil {
			return nil, 0, fmt.Errorf("%w: stream %s: metadata %s=%q", ErrFloorStream, cfg.FloorStream, originKey, v)
		}
	} else {
		origin = 0
	}
	if cfg.defaultDeadLetter() {
		name := cfg.FloorStream + "_DLQ"
		if cfg.FloorStream == "PARTI_"+group+"_"+cfg.Stream+"_FLOORS" {
			name = "PARTI_" + group + "_" + cfg.Stream + "_DLQ"
		}
		dl := cfg.deadLetterTemplate(group)
		subj := dl[:len(dl)-len(Placeholder)] + ">"
		if _, err := js.Stream(ctx, name); errors.Is(err, jetstream.ErrStreamNotFound) {
			_, err = js.CreateStream(ctx, jetstream.StreamConfig{
				Name: name, Description: "parti group " + group + ": dead letters of " + cfg.Stream,
				Subjects: []string{subj}, Storage: si.Config.Storage, Replicas: si.Config.Replicas,
			})
			if err != nil {
				if _, err2 := js.Stream(ctx, name); err2 != nil {
					return nil, 0, fmt.Errorf("consumer: dead-letter stream %s: %w", name, wrapPermission(nc, "create-stream", err))
				}
			}
		} else if err != nil {
			return nil, 0, fmt.Errorf("consumer: dead-letter stream %s: %w", name, wrapPermission(nc, "stream-info", err))
		}
	}
	return fs, origin, nil
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
// handlers returned and its floor is written past every message it
// processed, so the release the member appends next lets the new owner
// start at the first unprocessed message.
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
// ErrDrainTimeout, ErrStream) or the member's (parti.ErrStopped after
// Leave or Close); nil while it runs.
func (c *Consumer) Err() error {
	if err := c.e.Err(); err != nil {
		return err
	}
	return c.m.Err()
}

// Leave hands every partition off (each once its handlers returned and its
// floor is written), leaves the group and returns once the
// helper stopped or ctx ends.
func (c *Consumer) Leave(ctx context.Context) error {
	if err := c.m.Leave(ctx); err != nil {
		return err
	}
	return c.wait(ctx)
}

// Close closes for a restart: it stops consuming (handlers return, floors
// are written), stops the member's consumers and closes the member, which
// keeps its ID and partitions for the grace period: a process that joins
// with the same ID within the grace resumes them where this one stopped,
// without a duplicate.
func (c *Consumer) Close(ctx context.Context) error {
	c.e.requestStop()
	if err := c.wait(ctx); err != nil {
		return err
	}
	return c.m.Close(ctx)
}

// Stop stops at once, as a crash would, except that running handlers are
// waited for (their contexts are cancelled): the member does not tell the
// group and no floor is written. Messages handled since the partitions'
// last floors are handled again by their next owners.
func (c *Consumer) Stop() {
	e := c.e
	e.mu.Lock()
	e.crashed = true
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
