package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
)

// Errors of Migrate, each wrapped with the details.
var (
	// ErrTargetNotEmpty: the new group's stream already exists with
	// messages (or would number the genesis inside the old log's range).
	// Migrate writes only into a stream it starts.
	ErrTargetNotEmpty = errors.New("parti: projection: migrate: the target stream is not empty")
	// ErrLiveMembers: the old group still has live or leaving members.
	// Close every member for a restart (or force-expire the dead ones)
	// first, or set MigrateConfig.AllowLive.
	ErrLiveMembers = errors.New("parti: projection: migrate: the old group has live members")
	// ErrLogMoved: the old log grew while Migrate ran: a member still
	// writes to it.
	ErrLogMoved = errors.New("parti: projection: migrate: the old log moved on")
)

// MigrateConfig says which group Migrate moves where.
type MigrateConfig struct {
	// From is the old group's ID; its stream PARTI_<From> must exist.
	From string
	// To is the new generation's group ID: the stream PARTI_<To> on the
	// subjects parti.<To>.>, which members of the new generation name in
	// their Config.Group. It must differ from From (a stream's subjects
	// cannot overlap another's).
	To string
	// By and Note are recorded in the genesis: who migrated, and why.
	By, Note string
	// AllowLive migrates although the old fold has live or leaving
	// members: for members known to be dead but not yet expired (a live
	// one would keep appending to the old log, and Migrate then fails with
	// ErrLogMoved). They are carried as they are: in the new generation
	// their judges expire them (nobody heartbeats for them there) and their
	// partitions move. Without it, Migrate refuses (ErrLiveMembers).
	AllowLive bool
	// Replicas and Storage configure the new stream; zero values take the
	// old stream's.
	Replicas int
	Storage  jetstream.StorageType
	// ChunkBytes is the size of one genesis part's state (0:
	// DefaultChunkBytes).
	ChunkBytes int
	// Logger receives progress; nil discards.
	Logger *slog.Logger
}

// MigrateResult describes a migration.
type MigrateResult struct {
	FromGroup  string `json:"from_group"`
	FromStream string `json:"from_stream"`
	ToGroup    string `json:"to_group"`
	ToStream   string `json:"to_stream"`
	// UpTo is the old log's last sequence, folded into the genesis; Hash
	// the hash of the carried state (decider.Snapshot).
	UpTo uint64 `json:"up_to"`
	Hash string `json:"hash"`
	// GenesisFirst and GenesisLast are the sequences of the genesis parts
	// on the new stream; Parts their number and Bytes the state's size.
	GenesisFirst uint64 `json:"genesis_first"`
	GenesisLast  uint64 `json:"genesis_last"`
	Parts        int    `json:"parts"`
	Bytes        int    `json:"bytes"`
	// Members lists the carried incarnations ("id/inc status"), Partitions
	// counts the declared partitions, Records the old log records folded.
	Members    []string `json:"members"`
	Partitions int      `json:"partitions"`
	Records    uint64   `json:"records"`
}

// Migrate moves a group whose log has grown too old to a new-generation
// stream that starts from the old log's final state (DESIGN rule 7): an
// explicit, audited operation. The old stream is only read; it stays whole
// as the archive of the old generation.
//
// It folds the whole old log (from sequence 1, not from a snapshot: a
// migration is where the log is proven), refuses if the old group has live
// or leaving members (unless AllowLive), creates the new group's stream with
// parti's settings (Provision's) numbering its first message after the old
// stream's last sequence, and appends a genesis (events.Genesis: the encoded
// state, the old log's last sequence UpTo and the state's hash, in parts of
// one atomic batch, fenced on an empty log subject). Because the new
// sequences continue the old ones, every fencing token of the new generation
// is higher than every token of the old one. Finally it folds the new log as
// a member would and checks that the genesis applied.
//
// It refuses (ErrTargetNotEmpty) when the new group's stream exists with any
// message, or exists numbered so that the genesis would not follow the old
// log; and (ErrLogMoved) when the old log grows while it runs.
//
// The procedure:
//
//  1. Close every member of the old group for a restart (Member.Close): each
//     appends its close and keeps its ID and partitions for the grace. With
//     no live member left nobody leads, so the old log stops changing.
//  2. Migrate (parti-replay migrate --group OLD --to NEW). The genesis
//     carries the closing incarnations.
//  3. Start the members with Config.Group = NEW and the same IDs. Each new
//     incarnation takes over its closing predecessor's partitions with zero
//     moves (the restart rule); the new leader measures the grace of those
//     that do not come back, from when it first sees them, and moves their
//     partitions when it ends.
//  4. Audit: parti-replay audit --group NEW --from-group OLD refolds the old
//     log up to UpTo and checks that the genesis carries exactly that state.
//
// Every member of the new generation must run a build that knows the
// genesis (an older one would skip it as garbage and fold an empty group).
func Migrate(ctx context.Context, js jetstream.JetStream, cfg MigrateConfig) (*MigrateResult, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := events.ValidID(cfg.From); err != nil {
		return nil, fmt.Errorf("parti: projection: migrate: From: %w", err)
	}
	if err := events.ValidID(cfg.To); err != nil {
		return nil, fmt.Errorf("parti: projection: migrate: To: %w", err)
	}
	if cfg.From == cfg.To {
		return nil, fmt.Errorf("parti: projection: migrate: From and To are both %q: the new generation needs its own group ID", cfg.From)
	}
	if cfg.ChunkBytes < 0 {
		return nil, fmt.Errorf("parti: projection: migrate: ChunkBytes must be >= 0, got %d", cfg.ChunkBytes)
	}
	chunk := cfg.ChunkBytes
	if chunk == 0 {
		chunk = DefaultChunkBytes
	}
	res := &MigrateResult{FromGroup: cfg.From, FromStream: StreamName(cfg.From), ToGroup: cfg.To, ToStream: StreamName(cfg.To)}

	old, err := js.Stream(ctx, res.FromStream)
	if err != nil {
		return nil, fmt.Errorf("parti: projection: migrate: stream %s: %w", res.FromStream, err)
	}
	oldInfo, err := old.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("parti: projection: migrate: stream %s: %w", res.FromStream, err)
	}
	if err := checkTarget(ctx, js, res.ToStream, 0); err != nil {
		return nil, err
	}

	// Fold the whole old log, as a member would from scratch.
	st, err := foldAll(ctx, js, cfg.From, log, &res.Records)
	if err != nil {
		return nil, err
	}
	res.UpTo = st.LastSeq
	if res.UpTo == 0 {
		return nil, fmt.Errorf("parti: projection: migrate: the log of %s is empty: nothing to migrate", cfg.From)
	}
	if st.NewerVersionAt != 0 {
		return nil, fmt.Errorf("parti: projection: migrate: the log of %s holds a record of a newer protocol at %d, which this build cannot carry", cfg.From, st.NewerVersionAt)
	}
	var live []string
	for _, id := range st.Order {
		m := st.Members[id]
		status := "closing"
		switch {
		case m.Leaving:
			status = "leaving"
		case m.Live():
			status = "live"
		}
		res.Members = append(res.Members, fmt.Sprintf("%s/%d %s", m.ID, m.Incarnation, status))
		if status != "closing" {
			live = append(live, fmt.Sprintf("%s/%d (%s)", m.ID, m.Incarnation, status))
		}
	}
	res.Partitions = len(st.Partitions)
	if len(live) > 0 && !cfg.AllowLive {
		return nil, fmt.Errorf("%w: %s; close them for a restart first (or force-expire the dead ones)", ErrLiveMembers, strings.Join(live, ", "))
	}
	gen, err := decider.NewGenesis(st, cfg.From, res.FromStream, chunk, cfg.By, cfg.Note)
	if err != nil {
		return nil, fmt.Errorf("parti: projection: migrate: encode the state at %d: %w", res.UpTo, err)
	}
	res.Hash, res.Parts = gen[0].Hash, len(gen)
	for _, g := range gen {
		res.Bytes += len(g.State)
	}
	if len(gen) > MaxBatch {
		return nil, fmt.Errorf("parti: projection: migrate: the state (%d bytes) makes %d parts of %d bytes; at most %d fit one atomic batch: raise ChunkBytes (and the stream's message size)", res.Bytes, len(gen), chunk, MaxBatch)
	}

	// The new stream numbers its messages after everything the old one
	// holds (read again: heartbeats went on while the log was folded).
	if oldInfo, err = old.Info(ctx); err != nil {
		return nil, fmt.Errorf("parti: projection: migrate: stream %s: %w", res.FromStream, err)
	}
	first := max(oldInfo.State.LastSeq, res.UpTo) + 1
	if err := checkTarget(ctx, js, res.ToStream, res.UpTo); err != nil {
		return nil, err
	}
	sc := StreamConfig{Group: cfg.To, Replicas: cfg.Replicas, Storage: cfg.Storage,
		MaxMsgSize: oldInfo.Config.MaxMsgSize, Placement: oldInfo.Config.Placement,
		Description: fmt.Sprintf("parti group %s: new generation of %s from its log up to %d", cfg.To, cfg.From, res.UpTo)}
	if sc.Replicas == 0 {
		sc.Replicas = oldInfo.Config.Replicas
	}
	if cfg.Storage == 0 && oldInfo.Config.Storage == jetstream.MemoryStorage {
		sc.Storage = jetstream.MemoryStorage
	}
	if sc.MaxMsgSize < 0 {
		sc.MaxMsgSize = 0
	}
	if err := sc.validate(); err != nil {
		return nil, err
	}
	want := sc.jsConfig()
	want.FirstSeq = first
	if _, err := js.CreateStream(ctx, want); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return nil, fmt.Errorf("parti: projection: migrate: create stream %s: %w", res.ToStream, err)
	}
	if _, err := Provision(ctx, js, sc); err != nil { // checks what the server kept
		return nil, err
	}
	if err := checkTarget(ctx, js, res.ToStream, res.UpTo); err != nil {
		return nil, err
	}
	if err := checkUnmoved(ctx, old, cfg.From, res.UpTo); err != nil {
		return nil, err
	}

	// The genesis, fenced on an empty log subject.
	toSubj, _ := events.NewSubjects(cfg.To)
	app := NewAppender(js, toSubj)
	if st.Protocol > 0 {
		app.SetVersion(st.Protocol)
	}
	evs := make([]events.Event, len(gen))
	for i, g := range gen {
		evs[i] = g
	}
	last, err := app.AppendBatch(ctx, evs, 0)
	if err != nil {
		return nil, fmt.Errorf("parti: projection: migrate: append the genesis to %s: %w", res.ToStream, err)
	}
	res.GenesisLast, res.GenesisFirst = last, last-uint64(len(gen))+1
	log.Info("parti: projection: migrate: genesis appended", "from", cfg.From, "to", cfg.To, "up_to", res.UpTo,
		"hash", res.Hash, "seq", res.GenesisFirst, "parts", len(gen))
	if err := checkUnmoved(ctx, old, cfg.From, res.UpTo); err != nil {
		return res, fmt.Errorf("%w; the genesis at %d on %s misses those records: delete that stream and migrate again once the old group is quiet", err, res.GenesisFirst, res.ToStream)
	}

	// Fold the new log as a member would: the genesis must apply.
	var outcome decider.Outcome
	p, err := Start(ctx, js, Config{Group: cfg.To, SkipSnapshot: true, Logger: log,
		OnRecord: func(r events.Record, out decider.Outcome) {
			if r.Seq == last {
				outcome = out
			}
		}})
	if err != nil {
		return res, fmt.Errorf("parti: projection: migrate: fold %s: %w", cfg.To, err)
	}
	err = p.WaitFor(ctx, last)
	p.Stop()
	if err != nil {
		return res, fmt.Errorf("parti: projection: migrate: fold %s: %w", cfg.To, err)
	}
	if outcome.Kind != decider.Applied {
		return res, fmt.Errorf("parti: projection: migrate: the genesis on %s did not apply: %s (%s)", res.ToStream, outcome.Kind, outcome.Reason)
	}
	return res, nil
}

// foldAll folds group's whole log from sequence 1 and returns the state.
func foldAll(ctx context.Context, js jetstream.JetStream, group string, log *slog.Logger, records *uint64) (*decider.State, error) {
	p, err := Start(ctx, js, Config{Group: group, SkipSnapshot: true, Logger: log,
		OnRecord: func(events.Record, decider.Outcome) { *records++ }})
	if err != nil {
		return nil, fmt.Errorf("parti: projection: migrate: fold %s: %w", group, err)
	}
	defer p.Stop()
	newest, err := p.Newest(ctx)
	if err != nil {
		return nil, fmt.Errorf("parti: projection: migrate: fold %s: %w", group, err)
	}
	if err := p.WaitFor(ctx, newest); err != nil {
		return nil, fmt.Errorf("parti: projection: migrate: fold %s: %w", group, err)
	}
	p.Stop() // the fold goroutine has ended: the counter is ours
	st := p.State()
	if st.LastSeq != newest {
		return nil, fmt.Errorf("%w: folded %s up to %d, its log ended at %d when the fold started", ErrLogMoved, group, st.LastSeq, newest)
	}
	return st, nil
}

// checkUnmoved checks that the old log still ends at upTo.
func checkUnmoved(ctx context.Context, old jetstream.Stream, group string, upTo uint64) error {
	subj, _ := events.NewSubjects(group)
	rec, found, err := lastOnSubject(ctx, old, subj.Log())
	if err != nil {
		return fmt.Errorf("parti: projection: migrate: %w", err)
	}
	if !found || rec.Seq != upTo {
		return fmt.Errorf("%w: the log of %s ended at %d when folded and ends at %d now (a member still runs: close it)", ErrLogMoved, group, upTo, rec.Seq)
	}
	return nil
}

// checkTarget refuses a target stream that holds messages, or that would
// number the genesis at or below upTo.
func checkTarget(ctx context.Context, js jetstream.JetStream, name string, upTo uint64) error {
	st, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("parti: projection: migrate: stream %s: %w", name, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("parti: projection: migrate: stream %s: %w", name, err)
	}
	if info.State.Msgs > 0 || info.State.LastSeq > 0 && info.State.FirstSeq <= info.State.LastSeq {
		return fmt.Errorf("%w: %s holds %d messages (sequences %d to %d)", ErrTargetNotEmpty, name, info.State.Msgs, info.State.FirstSeq, info.State.LastSeq)
	}
	if upTo > 0 && info.State.LastSeq+1 <= upTo {
		return fmt.Errorf("%w: %s exists and would number the genesis %d, not after the old log's %d: delete it and let migrate create it", ErrTargetNotEmpty, name, info.State.LastSeq+1, upTo)
	}
	return nil
}
