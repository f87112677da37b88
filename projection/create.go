package projection

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// CreateAt creates a group's stream, as Provision would, whose first
// sequence is firstSeq (0 or 1: the start), and checks the settings the
// server kept. It fails when the stream exists: it is for loading a
// history into a new stream (parti-replay import), never for a live group.
func CreateAt(ctx context.Context, js jetstream.JetStream, cfg StreamConfig, firstSeq uint64) (jetstream.Stream, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	want := cfg.jsConfig()
	// CreateStream succeeds on an existing stream with the same settings:
	// look first.
	if _, err := js.Stream(ctx, want.Name); err == nil {
		return nil, fmt.Errorf("parti: projection: create stream %s: %w", want.Name, jetstream.ErrStreamNameAlreadyInUse)
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("parti: projection: create stream %s: %w", want.Name, err)
	}
	if firstSeq > 1 {
		want.FirstSeq = firstSeq
	}
	if _, err := js.CreateStream(ctx, want); err != nil {
		return nil, fmt.Errorf("parti: projection: create stream %s: %w", want.Name, err)
	}
	return Provision(ctx, js, cfg)
}
