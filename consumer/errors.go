package consumer

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Sentinel errors. Test for them with errors.Is.
var (
	// ErrStopped: the helper has stopped (left, closed, or failed).
	ErrStopped = errors.New("consumer: stopped")
	// ErrPermission: the server refused an operation for lack of
	// permission; the helper left the group and stopped.
	ErrPermission = errors.New("consumer: permission denied")
	// ErrDrainTimeout: a hand-off waited longer than Config.DrainTimeout
	// for running handlers; the member stopped acting without releasing.
	ErrDrainTimeout = errors.New("consumer: handlers did not return within the drain timeout")
	// ErrFloorWrite: a hand-off could not write a partition's floor; the
	// member stopped acting without releasing (the partitions move once it
	// is expired, and the next owner repeats what the floor does not cover).
	ErrFloorWrite = errors.New("consumer: a hand-off could not write the partition's floor")
	// ErrFloorStream: the floor stream exists but is not what the helper
	// needs (it is never changed silently: it holds every partition's
	// progress).
	ErrFloorStream = errors.New("consumer: floor stream unusable")
	// ErrStream: the user's stream is gone.
	ErrStream = errors.New("consumer: stream unusable")
	// ErrPermanent marks a handler error that must not be retried: the
	// message goes to the dead-letter subject at once.
	ErrPermanent = errors.New("consumer: permanent failure")
	// ErrNotManual: Msg.Ack or Msg.Nak outside manual-ack mode.
	ErrNotManual = errors.New("consumer: not in manual-ack mode")
	// ErrSettled: the message was settled already, or its partition was
	// handed off (settling it would no longer count).
	ErrSettled = errors.New("consumer: message already settled or handed off")
	// ErrPanic wraps a recovered handler panic.
	ErrPanic = errors.New("consumer: handler panicked")
)

// JetStream API error codes the helper branches on.
const (
	codeNotFound = 10014 // consumer not found
)

func apiCode(err error) jetstream.ErrorCode {
	var ae *jetstream.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode
	}
	return 0
}

// permissionErr reports whether err (from a request on nc) is a permission
// violation. The server reports those asynchronously (the request itself
// times out), so a timeout counts when the connection's last error is one.
func permissionErr(nc *nats.Conn, err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, nats.ErrPermissionViolation) {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) {
		return nc != nil && errors.Is(nc.LastError(), nats.ErrPermissionViolation)
	}
	return false
}

func wrapPermission(nc *nats.Conn, op string, err error) error {
	if permissionErr(nc, err) {
		last := nc.LastError()
		if last == nil {
			last = err
		}
		return fmt.Errorf("%w: %s: %w", ErrPermission, op, last)
	}
	return err
}
