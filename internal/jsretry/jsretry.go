// Package jsretry retries JetStream requests that fail in ways that pass on
// their own: a request timing out while a freshly created replicated stream
// elects its leader, no peers placed yet, a cluster not available yet.
package jsretry

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream API error codes that pass on their own.
const (
	codeNoPeers      = 10005 // no suitable peers for placement
	codeNotAvailable = 10008 // JetStream system temporarily unavailable
)

// Transient reports whether err may go away on its own.
func Transient(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) &&
		(api.ErrorCode == codeNoPeers || api.ErrorCode == codeNotAvailable || api.Code == 503 || api.Code == 408) {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)
}

// Do runs f until it succeeds, fails with an error that retry does not
// accept (nil retry: Transient), ctx ends or within has passed, backing off
// from 100 ms to 2 s. It returns f's last error.
func Do(ctx context.Context, log *slog.Logger, within time.Duration, retry func(error) bool, f func() error) error {
	if retry == nil {
		retry = Transient
	}
	deadline := time.Now().Add(within)
	backoff := 100 * time.Millisecond
	for {
		err := f()
		if err == nil || !retry(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		log.Warn("transient error, retrying", "err", err, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// DoEach is Do with each attempt bounded by each: f gets a context that
// ends after each (or with ctx). A request whose reply is lost (a stream
// create sent while a freshly formed cluster settles its meta leader can go
// unanswered) then costs one attempt, not the whole of ctx's deadline:
// JetStream requests take their time-out from the context's deadline when
// it has one. An attempt that ran out of time is transient while ctx
// lives.
func DoEach(ctx context.Context, log *slog.Logger, within, each time.Duration, retry func(error) bool, f func(ctx context.Context) error) error {
	if retry == nil {
		retry = Transient
	}
	return Do(ctx, log, within, func(err error) bool {
		return retry(err) || (errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil)
	}, func() error {
		actx, cancel := context.WithTimeout(ctx, each)
		defer cancel()
		return f(actx)
	})
}
