package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Sentinel errors of Decode. A record whose body fails with ErrMalformed or
// ErrUnknownType is garbage: skip it, log it, count it, go on. ErrNewerVersion
// means a well-formed envelope of a protocol this build does not speak: it is
// junk too (one stray message must not stop a fleet); only a valid, folded
// ProtocolVersionSet above MaxVersion makes a member stop acting.
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
//
// Bodies in the exact form Encode writes take a fast path (decodeCanonical)
// for the hot log events; anything else, and anything the fast path is not
// sure of, goes through encoding/json (decodeJSON). Both give the same result
// for every body: the fast path only accepts bodies on which encoding/json
// would succeed with the same event.
func Decode(body []byte) (Event, uint16, error) {
	if ev, v := decodeCanonical(body); ev != nil {
		return ev, v, nil
	}
	return decodeJSON(body)
}

// decodeJSON is Decode by encoding/json: the reference for every body.
func decodeJSON(body []byte) (Event, uint16, error) {
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
	// env.E is exactly one valid JSON value: Unmarshal decodes it as a
	// json.Decoder would, without the decoder's buffer.
	if err := json.Unmarshal(env.E, ev); err != nil {
		return nil, env.V, fmt.Errorf("%w: %s: %v", ErrMalformed, env.T, err)
	}
	return ev, env.V, nil
}

// decodeCanonical decodes a body in the exact form Encode writes it, for the
// event types on the hot path of the fold and of the judges: the envelope
// {"v":V,"t":T,"e":{...}} with no whitespace, a version this build reads, a
// known type, and an event object of that type's own keys (exact spelling,
// each at most once, any order), whose values are plain: strings without
// escapes or control characters and of valid UTF-8, non-negative integers
// without sign, fraction or exponent that fit their field, arrays of those,
// and null only for slices. On any other input it returns nil and Decode
// falls back to encoding/json, which then yields the event or the error.
//
// On the input it accepts, encoding/json decodes the same event: the body is
// valid JSON, the envelope has one v, t and e, and each field gets the value
// encoding/json would give it (an empty array an empty slice, null a nil
// one).
func decodeCanonical(body []byte) (Event, uint16) {
	d := fastDecoder{b: body}
	if !d.lit(`{"v":`) {
		return nil, 0
	}
	v := d.uint(uint64(MaxVersion))
	if !d.lit(`,"t":`) {
		return nil, 0
	}
	t := d.uint(0xffff)
	if !d.lit(`,"e":`) || v == 0 {
		return nil, 0
	}
	var ev Event
	switch Type(t) {
	case TypeMemberClaimed:
		ev = d.memberClaimed()
	case TypeMemberLeft:
		ev = d.memberLeft()
	case TypeMemberClosing:
		ev = d.memberClosing()
	case TypeGraceEnded:
		ev = d.graceEnded()
	case TypeMemberRemoved:
		ev = d.memberRemoved()
	case TypePartitionsDeclared:
		ev = d.partitionsDeclared()
	case TypeWindowClosed:
		ev = d.windowClosed()
	case TypeAssignmentDecided:
		ev = d.assignmentDecided()
	case TypePartitionsReleased:
		ev = d.partitionsReleased()
	case TypeHeartbeat:
		ev = d.heartbeat()
	case TypeExpiryVerdict:
		ev = d.expiryVerdict()
	default:
		return nil, 0
	}
	if !d.lit("}") || d.i != len(d.b) || d.bad {
		return nil, 0
	}
	return ev, uint16(v)
}

// fastDecoder reads the canonical form. Once bad is set every read fails
// and returns zero values; callers check bad once at the end.
type fastDecoder struct {
	b   []byte
	i   int
	bad bool
	// recent holds the last strings read: a decision names the same member
	// in many moves (alternating with the sources), and reusing the string
	// saves an allocation each time.
	recent [4]string
	next   int
}

func (d *fastDecoder) fail() { d.bad = true; d.i = len(d.b) }

// lit consumes the literal s.
func (d *fastDecoder) lit(s string) bool {
	if d.bad || len(d.b)-d.i < len(s) || string(d.b[d.i:d.i+len(s)]) != s {
		d.fail()
		return false
	}
	d.i += len(s)
	return true
}

// peek returns the next byte, or 0 at the end.
func (d *fastDecoder) peek() byte {
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// uint reads a JSON number that is a non-negative integer no greater than
// max: digits, no leading zero, followed by a delimiter.
func (d *fastDecoder) uint(max uint64) uint64 {
	start := d.i
	var n uint64
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c < '0' || c > '9' {
			break
		}
		x := uint64(c - '0')
		if x > max || n > (max-x)/10 {
			d.fail()
			return 0
		}
		n = n*10 + x
		d.i++
	}
	switch {
	case d.i == start, d.b[start] == '0' && d.i-start > 1:
		d.fail()
		return 0
	}
	if c := d.peek(); c != ',' && c != '}' && c != ']' {
		d.fail()
		return 0
	}
	return n
}

// int reads a non-negative integer into an int or int64 field (negative
// values take the slow path).
func (d *fastDecoder) int(max int64) int64 { return int64(d.uint(uint64(max))) }

// str reads a string that needs no unquoting: encoding/json returns its
// bytes as they are.
func (d *fastDecoder) str() string {
	if !d.lit(`"`) {
		return ""
	}
	start := d.i
	ascii := true
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			if !ascii && !utf8.Valid(s) {
				d.fail()
				return ""
			}
			for _, r := range d.recent {
				if string(s) == r {
					return r
				}
			}
			r := string(s)
			d.recent[d.next%len(d.recent)] = r
			d.next++
			return r
		case c == '\\' || c < ' ':
			d.fail()
			return ""
		case c >= utf8.RuneSelf:
			ascii = false
		}
		d.i++
	}
	d.fail()
	return ""
}

// object reads an object whose keys are among keys, calling field with the
// key's index for each member to read its value. A key outside keys, or
// repeated, makes the body non-canonical.
func (d *fastDecoder) object(keys []string, field func(k int)) {
	if !d.lit("{") {
		return
	}
	if d.peek() == '}' {
		d.i++
		return
	}
	var seen uint64
	for !d.bad {
		if !d.lit(`"`) {
			return
		}
		k := -1
		for j, key := range keys {
			if len(d.b)-d.i > len(key) && string(d.b[d.i:d.i+len(key)]) == key && d.b[d.i+len(key)] == '"' {
				k = j
				break
			}
		}
		if k < 0 || seen&(1<<k) != 0 {
			d.fail()
			return
		}
		seen |= 1 << k
		d.i += len(keys[k]) + 1
		if !d.lit(":") {
			return
		}
		field(k)
		if d.peek() == ',' {
			d.i++
			continue
		}
		d.lit("}")
		return
	}
}

// array reads null (returning false: leave the slice nil) or an array,
// calling elem for each element. An empty array returns true and calls
// nothing: the caller makes an empty slice, as encoding/json does.
func (d *fastDecoder) array(elem func()) bool {
	if d.peek() == 'n' {
		d.lit("null")
		return false
	}
	if !d.lit("[") {
		return false
	}
	if d.peek() == ']' {
		d.i++
		return true
	}
	for !d.bad {
		elem()
		if d.peek() == ',' {
			d.i++
			continue
		}
		d.lit("]")
		break
	}
	return true
}

// count returns how many times c occurs from the read position up to the
// next ']' (or the end): after a '[', a capacity hint for an array of numbers
// (c = ',': one more than the commas) or of flat objects (c = '{'). A wrong
// hint costs only a reallocation.
func (d *fastDecoder) count(c byte) int {
	n := 0
	for _, x := range d.b[d.i:] {
		if x == ']' {
			break
		}
		if x == c {
			n++
		}
	}
	return n
}

// uint32s reads null, or an array of uint32, into a slice of type S: nil,
// empty, or the numbers.
func uint32s[S ~[]uint32](d *fastDecoder) S {
	var out S
	if d.array(func() {
		if out == nil {
			out = make(S, 0, d.count(',')+1)
		}
		out = append(out, uint32(d.uint(maxUint32)))
	}) && out == nil {
		out = S{}
	}
	return out
}

const (
	maxUint16 = 1<<16 - 1
	maxUint32 = 1<<32 - 1
	maxUint64 = 1<<64 - 1
	maxInt64  = 1<<63 - 1
	maxInt    = int64(^uint(0) >> 1)
)

func (d *fastDecoder) memberClaimed() Event {
	e := &MemberClaimed{}
	d.object([]string{"id", "nonce", "max_protocol"}, func(k int) {
		switch k {
		case 0:
			e.ID = d.str()
		case 1:
			e.Nonce = d.str()
		case 2:
			e.MaxProtocol = uint16(d.uint(maxUint16))
		}
	})
	return e
}

var memberIncKeys = []string{"member", "inc"}

func (d *fastDecoder) memberLeft() Event {
	e := &MemberLeft{}
	d.object(memberIncKeys, func(k int) {
		if k == 0 {
			e.Member = d.str()
		} else {
			e.Incarnation = d.uint(maxUint64)
		}
	})
	return e
}

func (d *fastDecoder) memberClosing() Event {
	e := &MemberClosing{}
	d.object(memberIncKeys, func(k int) {
		if k == 0 {
			e.Member = d.str()
		} else {
			e.Incarnation = d.uint(maxUint64)
		}
	})
	return e
}

func (d *fastDecoder) graceEnded() Event {
	e := &GraceEnded{}
	d.object([]string{"member", "inc", "span_ms"}, func(k int) {
		switch k {
		case 0:
			e.Member = d.str()
		case 1:
			e.Incarnation = d.uint(maxUint64)
		case 2:
			e.SpanMillis = d.int(maxInt64)
		}
	})
	return e
}

func (d *fastDecoder) memberRemoved() Event {
	e := &MemberRemoved{}
	d.object([]string{"member", "inc", "reason", "verdict_seq", "judge", "span_ms"}, func(k int) {
		switch k {
		case 0:
			e.Member = d.str()
		case 1:
			e.Incarnation = d.uint(maxUint64)
		case 2:
			e.Reason = d.str()
		case 3:
			e.VerdictSeq = d.uint(maxUint64)
		case 4:
			e.Judge = d.str()
		case 5:
			e.SpanMillis = d.int(maxInt64)
		}
	})
	return e
}

func (d *fastDecoder) partitionsDeclared() Event {
	e := &PartitionsDeclared{}
	d.object([]string{"version", "part", "parts", "ids", "weights", "strategy", "by"}, func(k int) {
		switch k {
		case 0:
			e.Version = d.uint(maxUint64)
		case 1:
			e.Part = int(d.int(maxInt))
		case 2:
			e.Parts = int(d.int(maxInt))
		case 3:
			e.IDs = nil
			if d.array(func() {
				if e.IDs == nil {
					e.IDs = make([]string, 0, d.count(',')+1)
				}
				e.IDs = append(e.IDs, d.str())
			}) && e.IDs == nil {
				e.IDs = []string{}
			}
		case 4:
			e.Weights = uint32s[[]uint32](d)
		case 5:
			e.Strategy = d.str()
		case 6:
			e.By = d.str()
		}
	})
	return e
}

func (d *fastDecoder) windowClosed() Event {
	e := &WindowClosed{}
	d.object([]string{"by", "span_ms"}, func(k int) {
		if k == 0 {
			e.By = d.str()
		} else {
			e.SpanMillis = d.int(maxInt64)
		}
	})
	return e
}

func (d *fastDecoder) assignmentDecided() Event {
	e := &AssignmentDecided{}
	d.object([]string{"gen", "based_on", "leader", "leader_inc", "strategy", "reason", "part", "parts", "moves"}, func(k int) {
		switch k {
		case 0:
			e.Generation = d.uint(maxUint64)
		case 1:
			e.BasedOn = d.uint(maxUint64)
		case 2:
			e.Leader = d.str()
		case 3:
			e.LeaderInc = d.uint(maxUint64)
		case 4:
			e.Strategy = d.str()
		case 5:
			e.Reason = d.str()
		case 6:
			e.Part = int(d.int(maxInt))
		case 7:
			e.Parts = int(d.int(maxInt))
		case 8:
			e.Moves = nil
			if d.array(func() { e.Moves = append(e.Moves, d.move()) }) && e.Moves == nil {
				e.Moves = []Move{}
			}
		}
	})
	return e
}

var moveKeys = []string{"p", "from", "from_inc", "to", "to_inc"}

func (d *fastDecoder) move() Move {
	var m Move
	d.object(moveKeys, func(k int) {
		switch k {
		case 0:
			m.Parts = uint32s[Ranges](d)
		case 1:
			m.From = d.str()
		case 2:
			m.FromInc = d.uint(maxUint64)
		case 3:
			m.To = d.str()
		case 4:
			m.ToInc = d.uint(maxUint64)
		}
	})
	return m
}

var (
	releasedKeys = []string{"member", "inc", "released"}
	releaseKeys  = []string{"p", "token"}
)

func (d *fastDecoder) partitionsReleased() Event {
	e := &PartitionsReleased{}
	d.object(releasedKeys, func(k int) {
		switch k {
		case 0:
			e.Member = d.str()
		case 1:
			e.Incarnation = d.uint(maxUint64)
		case 2:
			e.Released = nil
			if d.array(func() {
				if e.Released == nil {
					e.Released = make([]Released, 0, d.count('{')+1)
				}
				var r Released
				d.object(releaseKeys, func(k int) {
					if k == 0 {
						r.Partition = uint32(d.uint(maxUint32))
					} else {
						r.Token = d.uint(maxUint64)
					}
				})
				e.Released = append(e.Released, r)
			}) && e.Released == nil {
				e.Released = []Released{}
			}
		}
	})
	return e
}

func (d *fastDecoder) heartbeat() Event {
	e := &Heartbeat{}
	d.object([]string{"n", "a"}, func(k int) {
		if k == 0 {
			e.Nonce = d.str()
		} else {
			e.Applied = d.uint(maxUint64)
		}
	})
	return e
}

func (d *fastDecoder) expiryVerdict() Event {
	e := &ExpiryVerdict{}
	d.object([]string{"member", "inc", "judge", "judge_inc", "last_seen", "span_ms", "forced"}, func(k int) {
		switch k {
		case 0:
			e.Member = d.str()
		case 1:
			e.Incarnation = d.uint(maxUint64)
		case 2:
			e.Judge = d.str()
		case 3:
			e.JudgeInc = d.uint(maxUint64)
		case 4:
			e.LastSeen = d.uint(maxUint64)
		case 5:
			e.SpanMillis = d.int(maxInt64)
		case 6:
			e.Forced = d.uint(maxUint64)
		}
	})
	return e
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
