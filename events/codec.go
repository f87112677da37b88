package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// MaxVersion is the newest protocol version this build reads and writes.
// Version 1 is the first.
const MaxVersion uint16 = 1

// Sentinel errors of Decode. A record whose body fails with ErrMalformed or
// ErrUnknownType is garbage: skip it, log it, count it, go on. ErrNewerVersion
// means a well-formed envelope from a newer protocol: a member stops acting.
var (
	ErrMalformed    = errors.New("events: malformed envelope")
	ErrUnknownType  = errors.New("events: unknown event type")
	ErrNewerVersion = errors.New("events: newer protocol version")
)

// VersionError is returned (wrapping ErrNewerVersion) for a well-formed
// envelope of a version this build does not know.
type VersionError struct {
	Version uint16
	Type    Type
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("events: protocol version %d (type %d) is newer than %d", e.Version, uint16(e.Type), MaxVersion)
}

// Unwrap makes errors.Is(err, ErrNewerVersion) true.
func (e *VersionError) Unwrap() error { return ErrNewerVersion }

type envelope struct {
	V uint16          `json:"v"`
	T Type            `json:"t"`
	E json.RawMessage `json:"e"`
}

type outEnvelope struct {
	V uint16 `json:"v"`
	T Type   `json:"t"`
	E Event  `json:"e"`
}

// Encode returns the wire body of ev at protocol version v.
func Encode(v uint16, ev Event) ([]byte, error) {
	if ev == nil {
		return nil, fmt.Errorf("events: encode: nil event")
	}
	if v == 0 {
		return nil, fmt.Errorf("events: encode: version 0")
	}
	return json.Marshal(outEnvelope{V: v, T: ev.Type(), E: ev})
}

// MustEncode is Encode for events built by this program; it panics on an
// error, which only a nil event or version 0 can cause.
func MustEncode(v uint16, ev Event) []byte {
	b, err := Encode(v, ev)
	if err != nil {
		panic(err)
	}
	return b
}

// Decode parses a wire body. It never panics: garbage returns an error wrapping
// ErrMalformed or ErrUnknownType, a well-formed envelope of a newer version
// returns a *VersionError wrapping ErrNewerVersion. The version is returned
// with every error it could be read for.
func Decode(body []byte) (Event, uint16, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if env.V == 0 {
		return nil, 0, fmt.Errorf("%w: missing version", ErrMalformed)
	}
	if len(env.E) == 0 || env.E[0] != '{' {
		return nil, env.V, fmt.Errorf("%w: event body is not an object", ErrMalformed)
	}
	if env.V > MaxVersion {
		return nil, env.V, &VersionError{Version: env.V, Type: env.T}
	}
	ev := newEvent(env.T)
	if ev == nil {
		return nil, env.V, fmt.Errorf("%w: code %d", ErrUnknownType, uint16(env.T))
	}
	dec := json.NewDecoder(bytes.NewReader(env.E))
	if err := dec.Decode(ev); err != nil {
		return nil, env.V, fmt.Errorf("%w: %s: %v", ErrMalformed, env.T, err)
	}
	return ev, env.V, nil
}

// Record is what the fold consumes: one stream message with its metadata and
// its decoded event.
type Record struct {
	// Seq is the stream sequence.
	Seq uint64
	// Time is the server's timestamp from the message metadata, for display
	// and audit only. The fold never reads it.
	Time time.Time
	// Subject is the message's subject.
	Subject string
	// Header holds the message headers (may be nil).
	Header map[string][]string
	// Body is the raw wire body.
	Body []byte
	// Event is the decoded event, or nil when Body did not decode.
	Event Event
	// Version is the envelope's protocol version (0 when unreadable).
	Version uint16
	// Err is the decode error, if any.
	Err error
}

// NewRecord decodes body and returns the record the fold consumes.
func NewRecord(seq uint64, ts time.Time, subject string, header map[string][]string, body []byte) Record {
	ev, v, err := Decode(body)
	return Record{Seq: seq, Time: ts, Subject: subject, Header: header, Body: body, Event: ev, Version: v, Err: err}
}

// Token is a fencing token: the log sequence at which an ownership took
// effect, with the owner's incarnation. Tokens of one partition increase
// strictly along the log; storage that remembers the highest token it has
// seen for a partition rejects writes carrying a lower one.
type Token struct {
	Seq         uint64 `json:"seq"`
	Incarnation uint64 `json:"inc"`
}

// Less reports whether t is older than u.
func (t Token) Less(u Token) bool {
	if t.Seq != u.Seq {
		return t.Seq < u.Seq
	}
	return t.Incarnation < u.Incarnation
}

func (t Token) String() string { return fmt.Sprintf("%d/%d", t.Seq, t.Incarnation) }
