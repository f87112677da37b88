package projection

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parti-io/parti/events"
)

// ErrIncompatibleStream is wrapped by Provision's error when the group's
// stream exists (or was created) with a setting that parti cannot work with.
// The error names the setting. Provision never changes an existing stream:
// an operator decides whether to migrate the group to a new stream.
var ErrIncompatibleStream = errors.New("parti: projection: incompatible stream")

// StreamPrefix is the first part of every group's stream name.
const StreamPrefix = "PARTI_"

// StreamName returns the name of group's stream: "PARTI_<group>". Group IDs
// are subject-safe ([events.ValidID]) and so are valid stream names.
func StreamName(group string) string { return StreamPrefix + group }

// StreamConfig says how Provision creates a group's stream. The zero value
// of every field but Group is a usable default.
type StreamConfig struct {
	// Group is the group's ID ([events.ValidID]). Required.
	Group string
	// Replicas is the stream's replica count. Zero means 1 when the stream
	// is created, and "any" when an existing stream is checked; a non-zero
	// value must match an existing stream's. Production runs 3.
	Replicas int
	// Storage is the stream's storage type (the zero value is
	// jetstream.FileStorage). It must match an existing stream's.
	Storage jetstream.StorageType
	// MaxMsgSize limits one message's size; zero leaves the server's limit
	// (1 MiB by default). A non-zero value must match an existing stream's.
	MaxMsgSize int32
	// Placement optionally places the stream in a cluster or on tagged
	// servers. It is used when creating only.
	Placement *jetstream.Placement
	// Description is the stream's description when it is created.
	Description string
}

func (c StreamConfig) validate() error {
	if err := events.ValidID(c.Group); err != nil {
		return fmt.Errorf("parti: projection: StreamConfig.Group: %w", err)
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return fmt.Errorf("parti: projection: StreamConfig.Replicas must be 0 to 5, got %d", c.Replicas)
	}
	if c.Storage != jetstream.FileStorage && c.Storage != jetstream.MemoryStorage {
		return fmt.Errorf("parti: projection: StreamConfig.Storage %v is unknown", c.Storage)
	}
	if c.MaxMsgSize < 0 {
		return fmt.Errorf("parti: projection: StreamConfig.MaxMsgSize must be >= 0, got %d", c.MaxMsgSize)
	}
	return nil
}

// jsConfig is the stream configuration Provision asks for.
func (c StreamConfig) jsConfig() jetstream.StreamConfig {
	subjects, _ := events.NewSubjects(c.Group)
	replicas := c.Replicas
	if replicas == 0 {
		replicas = 1
	}
	desc := c.Description
	if desc == "" {
		desc = "parti group " + c.Group + ": log, heartbeats, snapshots"
	}
	maxMsgSize := c.MaxMsgSize
	if maxMsgSize == 0 {
		maxMsgSize = -1
	}
	return jetstream.StreamConfig{
		Name:              StreamName(c.Group),
		Description:       desc,
		Subjects:          []string{subjects.All()},
		Retention:         jetstream.LimitsPolicy,
		MaxConsumers:      -1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxAge:            0,
		MaxMsgsPerSubject: -1,
		MaxMsgSize:        maxMsgSize,
		Discard:           jetstream.DiscardOld,
		Storage:           c.Storage,
		Replicas:          replicas,
		Placement:         c.Placement,
		// The log is kept whole (DESIGN rule 7): no message is ever
		// deleted, purged or rolled up. The server never lets these be
		// switched back once set.
		DenyDelete:  true,
		DenyPurge:   true,
		AllowRollup: false,
		// Heartbeats and snapshots carry a per-message TTL; TTLs still run
		// on a stream that denies delete and purge.
		AllowMsgTTL: true,
		// No subject delete markers: the server would force rollup on and
		// purge-denial off.
		SubjectDeleteMarkerTTL: 0,
		// Large declarations and decisions are one atomic batch.
		AllowAtomicPublish: true,
		// Reads of a subject's last message (fences) go to the stream
		// leader, never to a possibly stale follower.
		AllowDirect: false,
	}
}

// Provision creates the group's stream if it is missing and checks the
// settings the server actually kept, for a new and for an existing stream
// alike. The stream is named StreamName(cfg.Group), takes every subject of
// the group (events.Subjects.All: parti.<group>.>), denies delete and purge,
// does not allow rollups, allows per-message TTLs and atomic batches, has no
// subject delete markers, discards old messages and has no limit that would
// ever drop a log message.
//
// An existing stream is never updated: if a setting differs, Provision
// returns an error wrapping ErrIncompatibleStream that names the setting.
// Calling Provision again on a compatible stream is a no-op.
func Provision(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Stream, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	want := cfg.jsConfig()
	st, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Created concurrently (or exists with other settings):
			// check what is there.
			st, err = js.Stream(ctx, want.Name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("parti: projection: provision stream %s: %w", want.Name, err)
	}
	info := st.CachedInfo()
	if info == nil {
		if info, err = st.Info(ctx); err != nil {
			return nil, fmt.Errorf("parti: projection: provision stream %s: %w", want.Name, err)
		}
	}
	if err := checkStream(info.Config, cfg, want); err != nil {
		return nil, err
	}
	return st, nil
}

// checkStream compares the configuration the server kept with what parti
// needs and names the first setting that differs.
func checkStream(got jetstream.StreamConfig, cfg StreamConfig, want jetstream.StreamConfig) error {
	bad := func(setting string, have, need any) error {
		return fmt.Errorf("%w: stream %s has %s=%v, parti needs %v", ErrIncompatibleStream, got.Name, setting, have, need)
	}
	switch {
	case !slices.Equal(got.Subjects, want.Subjects):
		return bad("Subjects", got.Subjects, want.Subjects)
	case got.Retention != jetstream.LimitsPolicy:
		return bad("Retention", got.Retention, jetstream.LimitsPolicy)
	case got.Discard != jetstream.DiscardOld:
		return bad("Discard", got.Discard, jetstream.DiscardOld)
	case got.MaxMsgs > 0:
		return bad("MaxMsgs", got.MaxMsgs, "unlimited")
	case got.MaxBytes > 0:
		return bad("MaxBytes", got.MaxBytes, "unlimited")
	case got.MaxAge != 0:
		return bad("MaxAge", got.MaxAge, "unlimited")
	case got.MaxMsgsPerSubject > 0:
		return bad("MaxMsgsPerSubject", got.MaxMsgsPerSubject, "unlimited")
	case !got.DenyDelete:
		return bad("DenyDelete", got.DenyDelete, true)
	case !got.DenyPurge:
		return bad("DenyPurge", got.DenyPurge, true)
	case got.AllowRollup:
		return bad("AllowRollup", got.AllowRollup, false)
	case !got.AllowMsgTTL:
		return bad("AllowMsgTTL", got.AllowMsgTTL, true)
	case !got.AllowAtomicPublish:
		return bad("AllowAtomicPublish", got.AllowAtomicPublish, true)
	case got.SubjectDeleteMarkerTTL != 0:
		return bad("SubjectDeleteMarkerTTL", got.SubjectDeleteMarkerTTL, 0)
	case got.Sealed:
		return bad("Sealed", got.Sealed, false)
	case got.NoAck:
		return bad("NoAck", got.NoAck, false)
	case got.Mirror != nil:
		return bad("Mirror", got.Mirror.Name, "none")
	case len(got.Sources) > 0:
		return bad("Sources", len(got.Sources), 0)
	case got.SubjectTransform != nil:
		return bad("SubjectTransform", got.SubjectTransform.Source+"->"+got.SubjectTransform.Destination, "none")
	case got.PersistMode != jetstream.DefaultPersistMode:
		return bad("PersistMode", got.PersistMode, jetstream.DefaultPersistMode)
	case got.Storage != want.Storage:
		return bad("Storage", got.Storage, want.Storage)
	case cfg.Replicas != 0 && got.Replicas != cfg.Replicas:
		return bad("Replicas", got.Replicas, cfg.Replicas)
	case cfg.MaxMsgSize != 0 && got.MaxMsgSize != cfg.MaxMsgSize:
		return bad("MaxMsgSize", got.MaxMsgSize, cfg.MaxMsgSize)
	}
	return nil
}
