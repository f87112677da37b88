package jsretry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestTransient(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{context.DeadlineExceeded, true},
		{fmt.Errorf("stream info: %w", nats.ErrTimeout), true},
		{nats.ErrNoResponders, true},
		{&jetstream.APIError{Code: 500, ErrorCode: codeNoPeers}, true},
		{&jetstream.APIError{Code: 503, ErrorCode: codeNotAvailable}, true},
		{&jetstream.APIError{Code: 400, ErrorCode: 10058}, false}, // stream name in use
		{nats.ErrPermissionViolation, false},
		{errors.New("other"), false},
	} {
		if got := Transient(c.err); got != c.want {
			t.Errorf("Transient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestDoRetriesOnlyWhatPasses(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	n := 0
	err := Do(ctx, log, time.Minute, nil, func() error {
		if n++; n < 3 {
			return nats.ErrTimeout
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("transient errors: err %v after %d calls, want nil after 3", err, n)
	}
	n = 0
	permanent := errors.New("permanent")
	if err := Do(ctx, log, time.Minute, nil, func() error { n++; return permanent }); !errors.Is(err, permanent) || n != 1 {
		t.Fatalf("a permanent error: err %v after %d calls, want it after 1", err, n)
	}
	n = 0
	if err := Do(ctx, log, time.Minute, func(error) bool { return false }, func() error { n++; return nats.ErrTimeout }); n != 1 || err == nil {
		t.Fatalf("a refusing retry func: %d calls", n)
	}
	n = 0
	if err := Do(ctx, log, 0, nil, func() error { n++; return nats.ErrTimeout }); n != 1 || err == nil {
		t.Fatalf("no time to retry: %d calls", n)
	}
}
