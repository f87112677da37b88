package consumer

import (
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti/events"
)

// Msg is one message of an owned partition, handed to the Handler.
type Msg struct {
	// Partition is the partition's ID and Token the fencing token of the
	// ownership under which the message is handled: pass it to storage that
	// rejects stale owners.
	Partition string
	Token     events.Token
	// Subject, Header and Data are the message's.
	Subject string
	Header  nats.Header
	Data    []byte
	// Seq is the message's sequence in the user's stream.
	Seq uint64
	// Attempt counts this member's attempts at the message, from 1.
	Attempt int
	// Time is when the message was stored (server time).
	Time time.Time

	try *attempt
}

// attempt is one hand-out of a delivery to the handler; it is settled once.
type attempt struct {
	d       *delivery
	settled atomic.Bool
	start   time.Time
}

// Ack settles the message as processed, in manual-ack mode; with
// ConfirmEach it returns once the server confirmed the partition's new
// floor.
// Safe from any goroutine.
func (m *Msg) Ack() error {
	e := m.try.d.p.e
	if !e.cfg.ManualAck {
		return ErrNotManual
	}
	return e.settle(m.try, nil)
}

// Nak settles the message as failed, in manual-ack mode: it is retried after
// a back-off (blocking its partition) or dead-lettered, as when a handler
// returns err. Safe from any goroutine.
func (m *Msg) Nak(err error) error {
	e := m.try.d.p.e
	if !e.cfg.ManualAck {
		return ErrNotManual
	}
	if err == nil {
		err = errNakNil
	}
	return e.settle(m.try, err)
}

// Raw returns the underlying JetStream message, delivered by an ordered
// (acknowledgement-free) consumer: acknowledging it does nothing.
func (m *Msg) Raw() jetstream.Msg { return m.try.d.jm }

type nakNil struct{}

func (nakNil) Error() string { return "consumer: Nak(nil)" }

var errNakNil error = nakNil{}
