package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/parti-io/parti/events"
)

// referenceDecode is Decode as first written, on encoding/json alone: the
// envelope, then the event through a json.Decoder. Decode's fast path must
// agree with it on every body, errors included.
func referenceDecode(body []byte) (events.Event, uint16, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", events.ErrMalformed, err)
	}
	if env.V == 0 {
		return nil, 0, fmt.Errorf("%w: missing version", events.ErrMalformed)
	}
	if len(env.E) == 0 || env.E[0] != '{' {
		return nil, env.V, fmt.Errorf("%w: event body is not an object", events.ErrMalformed)
	}
	if env.V > events.MaxVersion {
		return nil, env.V, &events.VersionError{Version: env.V, Type: env.T}
	}
	rt, ok := eventTypes[env.T]
	if !ok {
		return nil, env.V, fmt.Errorf("%w: code %d", events.ErrUnknownType, uint16(env.T))
	}
	ev := reflect.New(rt).Interface().(events.Event)
	if err := json.NewDecoder(bytes.NewReader(env.E)).Decode(ev); err != nil {
		return nil, env.V, fmt.Errorf("%w: %s: %v", events.ErrMalformed, env.T, err)
	}
	return ev, env.V, nil
}

// envelope is named like the codec's own: encoding/json names it in errors.
type envelope struct {
	V uint16          `json:"v"`
	T events.Type     `json:"t"`
	E json.RawMessage `json:"e"`
}

// eventTypes maps each known code to its Go type, from the samples.
var eventTypes = func() map[events.Type]reflect.Type {
	m := map[events.Type]reflect.Type{}
	for _, s := range samples() {
		m[s.event.Type()] = reflect.TypeOf(s.event).Elem()
	}
	return m
}()

// checkAgainstReference fails t when Decode and referenceDecode disagree on
// body: a different event (nil and empty slices told apart), version, error
// class or error text.
func checkAgainstReference(t *testing.T, body []byte) {
	t.Helper()
	ev, v, err := events.Decode(body)
	rev, rv, rerr := referenceDecode(body)
	if v != rv {
		t.Fatalf("%q: version %d, reference %d", body, v, rv)
	}
	if (err == nil) != (rerr == nil) {
		t.Fatalf("%q: error %v, reference %v", body, err, rerr)
	}
	if err != nil {
		// The reference's envelope type lives in this package.
		if want := strings.ReplaceAll(rerr.Error(), "events_test.envelope", "events.envelope"); err.Error() != want {
			t.Fatalf("%q: error %q, reference %q", body, err, want)
		}
		for _, target := range []error{events.ErrMalformed, events.ErrUnknownType, events.ErrNewerVersion} {
			if errors.Is(err, target) != errors.Is(rerr, target) {
				t.Fatalf("%q: error %v and reference %v differ on %v", body, err, rerr, target)
			}
		}
		return
	}
	if diff := cmp.Diff(rev, ev); diff != "" {
		t.Fatalf("%q: decodes differently from the reference (-reference +Decode):\n%s", body, diff)
	}
	if reflect.TypeOf(ev) != reflect.TypeOf(rev) {
		t.Fatalf("%q: %T, reference %T", body, ev, rev)
	}
}

// trickyBodies are near-canonical bodies that the fast path must hand to
// encoding/json, or decode exactly as it would.
var trickyBodies = []string{
	`{"v":1,"t":3,"e":{"member":"a","inc":1}}`,
	`{"v":1,"t":3,"e":{"inc":1,"member":"a"}}`,
	`{"v":1,"t":3,"e":{}}`,
	`{"v":1,"t":3,"e":{"member":"a","inc":1}} `,
	` {"v":1,"t":3,"e":{"member":"a","inc":1}}`,
	`{"v":1,"t":3,"e":{"member":"a","inc":1},"v":2}`,
	`{"v":1,"t":3,"e":{"member":"a","inc":1},"t":4}`,
	`{"v":1,"t":3,"e":{"member":"a","inc":1},"e":{}}`,
	`{"v":1,"t":3,"e":{"member":"a","member":"b"}}`,
	`{"v":1,"t":3,"e":{"Member":"a","INC":1}}`,
	`{"v":1,"t":3,"e":{"member":"a","inc":1,"x":1}}`,
	`{"v":1,"t":3,"e":{"member":"a\u0062","inc":1}}`,
	`{"v":1,"t":3,"e":{"member":"a\"b","inc":1}}`,
	`{"v":1,"t":3,"e":{"member":"a` + "\t" + `b","inc":1}}`,
	`{"v":1,"t":3,"e":{"member":"é","inc":1}}`,
	`{"v":1,"t":3,"e":{"member":"` + "\xff" + `","inc":1}}`,
	`{"v":1,"t":3,"e":{"member":"` + "\x7f" + `","inc":1}}`,
	`{"v":1,"t":3,"e":{"member":null,"inc":null}}`,
	`{"v":1,"t":3,"e":{"member":"a","inc":01}}`,
	`{"v":1,"t":3,"e":{"member":"a","inc":0}}`,
	`{"v":1,"t":3,"e":{"member":"a","inc":-0}}`,
	`{"v":1,"t":3,"e":{"member":"a","inc":1.0}}`,
	`{"v":1,"t":3,"e":{"member":"a","inc":1e2}}`,
	`{"v":1,"t":3,"e":{"member":"a","inc":18446744073709551615}}`,
	`{"v":1,"t":3,"e":{"member":"a","inc":18446744073709551616}}`,
	`{"v":1,"t":3,"e":{"member":"a","inc":99999999999999999999}}`,
	`{"v":1,"t":3,"e":{"member":"a","inc":1,}}`,
	`{"v":1,"t":3,"e":{,"member":"a"}}`,
	`{"v":1,"t":3,"e":{"member" :"a"}}`,
	`{"v":01,"t":3,"e":{}}`,
	`{"v":2,"t":3,"e":{}}`,
	`{"v":9,"t":3,"e":{}}`,
	`{"v":0,"t":3,"e":{}}`,
	`{"v":1,"t":03,"e":{}}`,
	`{"v":1,"t":65535,"e":{}}`,
	`{"v":1,"t":65536,"e":{}}`,
	`{"v":1,"t":8,"e":{}}`,
	`{"v":1,"t":3,"e":[]}`,
	`{"v":1,"t":3,"e":{"member":"a"}`,
	`{"v":1,"t":3,"e":{"member":"a"}}}`,
	`{"v":1,"t":5,"e":{"member":"a","inc":1,"span_ms":-5}}`,
	`{"v":1,"t":5,"e":{"member":"a","inc":1,"span_ms":9223372036854775807}}`,
	`{"v":1,"t":5,"e":{"member":"a","inc":1,"span_ms":9223372036854775808}}`,
	`{"v":1,"t":11,"e":{"member":"a","inc":1,"released":[]}}`,
	`{"v":1,"t":11,"e":{"member":"a","inc":1,"released":null}}`,
	`{"v":1,"t":11,"e":{"member":"a","inc":1,"released":[{}]}}`,
	`{"v":1,"t":11,"e":{"member":"a","inc":1,"released":[null]}}`,
	`{"v":1,"t":11,"e":{"member":"a","inc":1,"released":[{"p":4294967295,"token":1}]}}`,
	`{"v":1,"t":11,"e":{"member":"a","inc":1,"released":[{"p":4294967296,"token":1}]}}`,
	`{"v":1,"t":11,"e":{"member":"a","inc":1,"released":[{"p":1,"token":2},]}}`,
	`{"v":1,"t":11,"e":{"member":"a","inc":1,"released":[{"p":1,"p":2}]}}`,
	`{"v":1,"t":11,"e":{"member":"a","inc":1,"released":{"p":1}}}`,
	`{"v":1,"t":10,"e":{"gen":1,"moves":[{"p":[],"to":"a"},{"p":null},{"p":[1,2,3]}]}}`,
	`{"v":1,"t":10,"e":{"gen":1,"moves":[]}}`,
	`{"v":1,"t":10,"e":{"gen":1,"moves":null}}`,
	`{"v":1,"t":10,"e":{"gen":1,"parts":3,"part":2,"moves":[{"p":[0,1],"from":"b","from_inc":2,"to":"a","to_inc":1}]}}`,
	`{"v":1,"t":10,"e":{"gen":1,"part":-1}}`,
	`{"v":1,"t":10,"e":{"gen":1,"part":9223372036854775808}}`,
	`{"v":1,"t":7,"e":{"version":1,"ids":["a","b","é"],"weights":[1,2,4294967295],"by":"w"}}`,
	`{"v":1,"t":7,"e":{"version":1,"ids":[],"weights":[]}}`,
	`{"v":1,"t":7,"e":{"version":1,"ids":null,"weights":null}}`,
	`{"v":1,"t":7,"e":{"version":1,"ids":["a",1]}}`,
	`{"v":1,"t":2,"e":{"nonce":"n","max_protocol":65535}}`,
	`{"v":1,"t":2,"e":{"nonce":"n","max_protocol":65536}}`,
	`{"v":1,"t":100,"e":{"n":"x","a":5}}`,
	`{"v":1,"t":101,"e":{"member":"a","inc":1,"judge":"b","judge_inc":2,"last_seen":3,"span_ms":4}}`,
	`{"v":1,"t":9,"e":{"by":"a","span_ms":0}}`,
	`{"v":1,"t":12,"e":{"action":"pause"}}`,
	`{"v":1,"t":150,"e":{"data":"AAEC"}}`,
	`0`, `""`, `[]`, `null`, `{}`, `{"v":1}`, `{"v":1,"t":3}`, `{"v":1,"t":3,"e":`,
}

// TestDecodeMatchesReference checks Decode against encoding/json on tricky
// bodies, the golden bodies, and every one-byte deletion, duplication and
// substitution of the golden bodies.
func TestDecodeMatchesReference(t *testing.T) {
	for _, b := range trickyBodies {
		checkAgainstReference(t, []byte(b))
	}
	subst := []byte(`{}[]",:0123456789-.eE\nuatx` + "\x00\xff ")
	for _, r := range readGolden(t) {
		body := []byte(r.Body)
		checkAgainstReference(t, body)
		for i := range body {
			checkAgainstReference(t, append(body[:i:i], body[i+1:]...))
			checkAgainstReference(t, append(body[:i+1:i+1], body[i:]...))
			for _, c := range subst {
				m := bytes.Clone(body)
				m[i] = c
				checkAgainstReference(t, m)
			}
		}
	}
}

// FuzzDecode feeds Decode arbitrary bodies, seeded with the golden records'
// bodies and the tricky ones. Decode must never panic; it must agree with
// encoding/json (referenceDecode) on the event, version and error; an error
// must be exactly one of garbage (ErrMalformed, ErrUnknownType) or a newer
// version (*VersionError); and an event that decodes must survive
// decode → encode → decode unchanged.
//
//	go test ./events -run '^$' -fuzz '^FuzzDecode$' -fuzztime 30s
func FuzzDecode(f *testing.F) {
	for _, r := range readGolden(f) {
		f.Add([]byte(r.Body))
	}
	for _, s := range trickyBodies {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkAgainstReference(t, body)
		ev, v, err := events.Decode(body)
		if err != nil {
			if ev != nil {
				t.Fatalf("event %#v returned with error %v", ev, err)
			}
			garbage := errors.Is(err, events.ErrMalformed) || errors.Is(err, events.ErrUnknownType)
			var ve *events.VersionError
			newer := errors.As(err, &ve)
			if garbage == newer {
				t.Fatalf("error %v: garbage=%v newer=%v, want exactly one", err, garbage, newer)
			}
			if newer && (ve.Version <= events.MaxVersion || ve.Version != v || !errors.Is(err, events.ErrNewerVersion)) {
				t.Fatalf("VersionError %+v with version %d", *ve, v)
			}
			return
		}
		if ev == nil || v == 0 || v > events.MaxVersion {
			t.Fatalf("decoded %#v at version %d without error", ev, v)
		}
		again, err := events.Encode(v, ev)
		if err != nil {
			t.Fatalf("encode %#v: %v", ev, err)
		}
		ev2, v2, err := events.Decode(again)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", again, err)
		}
		if v2 != v {
			t.Fatalf("version %d became %d", v, v2)
		}
		// Encoding writes nil and empty slices alike ([] for ranges).
		if diff := cmp.Diff(ev, ev2, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("decode → encode → decode changed the event (-first +second):\n%s", diff)
		}
		// And the canonical encoding is a fixed point.
		third, err := events.Encode(v2, ev2)
		if err != nil || !bytes.Equal(third, again) {
			t.Fatalf("encoding is not stable:\n%s\n%s", again, third)
		}
	})
}
