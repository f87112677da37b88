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

// An attempt that gets no answer ends after each and is tried again, well
// before the caller's own (long) deadline.
func TestDoEachBoundsEveryAttempt(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	// Unbounded, the first attempt would last the caller's 30 s and fail.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := 0
	err := DoEach(ctx, log, time.Minute, 50*time.Millisecond, nil, func(actx context.Context) error {
		if n++; n == 1 {
			<-actx.Done() // the lost reply: wait as a request would
			return fmt.Errorf("create: %w", actx.Err())
		}
		if dl, ok := actx.Deadline(); !ok || time.Until(dl) > 50*time.Millisecond {
			return fmt.Errorf("attempt %d: deadline %v (set %v), want within 50ms", n, dl, ok)
		}
		return nil
	})
	if err != nil || n != 2 {
		t.Fatalf("err %v after %d attempts, want nil after 2", err, n)
	}
	// A caller's context that ended is not retried.
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	n = 0
	err = DoEach(cctx, log, time.Minute, time.Second, func(error) bool { return false }, func(actx context.Context) error {
		n++
		return actx.Err()
	})
	if n != 1 || !errors.Is(err, context.Canceled) {
		t.Fatalf("ended caller: %d attempts, err %v; want 1, Canceled", n, err)
	}
	// Nor is a permanent error.
	n = 0
	permanent := errors.New("permanent")
	if err := DoEach(ctx, log, time.Minute, time.Second, nil, func(context.Context) error { n++; return permanent }); n != 1 || !errors.Is(err, permanent) {
		t.Fatalf("permanent: %d attempts, err %v", n, err)
	}
}
