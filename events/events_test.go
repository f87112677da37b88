package events_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/parti-io/parti/events"
)

// knownCodes returns every type code this build knows, ascending: the codes
// whose String is a name rather than "type(N)".
func knownCodes() []events.Type {
	var out []events.Type
	for c := 0; c <= math.MaxUint16; c++ {
		if t := events.Type(c); !strings.HasPrefix(t.String(), "type(") {
			out = append(out, t)
		}
	}
	return out
}

// TestTypeCodesArePinned lists every wire code with its name. A renumbered,
// renamed, added or removed code fails it: codes are never renumbered or
// reused (old history must keep decoding), so a change here is a protocol
// change, not a refactoring.
func TestTypeCodesArePinned(t *testing.T) {
	pinned := []struct {
		code  uint16
		typ   events.Type
		name  string
		event events.Event
	}{
		{1, events.TypeProtocolVersionSet, "protocol-version-set", &events.ProtocolVersionSet{}},
		{2, events.TypeMemberClaimed, "member-claimed", &events.MemberClaimed{}},
		{3, events.TypeMemberLeft, "member-left", &events.MemberLeft{}},
		{4, events.TypeMemberClosing, "member-closing", &events.MemberClosing{}},
		{5, events.TypeGraceEnded, "grace-ended", &events.GraceEnded{}},
		{6, events.TypeMemberRemoved, "member-removed", &events.MemberRemoved{}},
		{7, events.TypePartitionsDeclared, "partitions-declared", &events.PartitionsDeclared{}},
		// 8 is reserved: never reused.
		{9, events.TypeWindowClosed, "window-closed", &events.WindowClosed{}},
		{10, events.TypeAssignmentDecided, "assignment-decided", &events.AssignmentDecided{}},
		{11, events.TypePartitionsReleased, "partitions-released", &events.PartitionsReleased{}},
		{12, events.TypeOperatorAction, "operator-action", &events.OperatorAction{}},
		{13, events.TypeGenesis, "genesis", &events.Genesis{}},
		{100, events.TypeHeartbeat, "heartbeat", &events.Heartbeat{}},
		{101, events.TypeExpiryVerdict, "expiry-verdict", &events.ExpiryVerdict{}},
		{150, events.TypeSnapshotChunk, "snapshot-chunk", &events.SnapshotChunk{}},
	}
	var codes []events.Type
	for _, p := range pinned {
		codes = append(codes, events.Type(p.code))
		if uint16(p.typ) != p.code {
			t.Errorf("%s: constant is %d, pinned %d", p.name, uint16(p.typ), p.code)
		}
		if got := p.event.Type(); uint16(got) != p.code {
			t.Errorf("%T.Type() = %d, pinned %d", p.event, uint16(got), p.code)
		}
		if got := events.Type(p.code).String(); got != p.name {
			t.Errorf("Type(%d).String() = %q, pinned %q", p.code, got, p.name)
		}
		if got, ok := events.TypeByName(p.name); !ok || uint16(got) != p.code {
			t.Errorf("TypeByName(%q) = %d, %v, pinned %d", p.name, uint16(got), ok, p.code)
		}
		// The code on the wire decodes to the Go type.
		ev, _, err := events.Decode(fmt.Appendf(nil, `{"v":1,"t":%d,"e":{}}`, p.code))
		if err != nil {
			t.Errorf("code %d: %v", p.code, err)
		} else if diff := cmp.Diff(p.event, ev); diff != "" {
			t.Errorf("code %d decodes to %T, want %T", p.code, ev, p.event)
		}
	}
	if diff := cmp.Diff(codes, knownCodes()); diff != "" {
		t.Errorf("known codes differ from the pinned table (-pinned +known):\n%s", diff)
	}
	if _, ok := events.TypeByName("no-such-type"); ok {
		t.Error("TypeByName accepted an unknown name")
	}
	if got := events.Type(8).String(); got != "type(8)" {
		t.Errorf("reserved code 8 is %q", got)
	}
}

// TestRoundTrip encodes and decodes every event type, fully populated and
// zero.
func TestRoundTrip(t *testing.T) {
	for _, s := range samples() {
		t.Run(s.name, func(t *testing.T) {
			body, err := events.Encode(events.MaxVersion, s.event)
			if err != nil {
				t.Fatal(err)
			}
			ev, v, err := events.Decode(body)
			if err != nil {
				t.Fatalf("decode %s: %v", body, err)
			}
			if v != events.MaxVersion {
				t.Errorf("version %d, want %d", v, events.MaxVersion)
			}
			if diff := cmp.Diff(s.event, ev); diff != "" {
				t.Errorf("round trip (-sent +decoded):\n%s", diff)
			}
			// The zero event round-trips too (nil and empty slices are
			// the same event).
			zero, _, err := events.Decode(fmt.Appendf(nil, `{"v":1,"t":%d,"e":{}}`, uint16(s.event.Type())))
			if err != nil {
				t.Fatal(err)
			}
			zb := events.MustEncode(1, zero)
			back, _, err := events.Decode(zb)
			if err != nil {
				t.Fatalf("decode %s: %v", zb, err)
			}
			if diff := cmp.Diff(zero, back, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("zero round trip of %s (-sent +decoded):\n%s", zb, diff)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	if _, err := events.Encode(1, nil); err == nil {
		t.Error("Encode(nil) succeeded")
	}
	if _, err := events.Encode(0, &events.MemberLeft{}); err == nil {
		t.Error("Encode at version 0 succeeded")
	}
	defer func() {
		if recover() == nil {
			t.Error("MustEncode(nil) did not panic")
		}
	}()
	events.MustEncode(1, nil)
}

// TestDecodeGarbage: garbage never decodes, and its error wraps ErrMalformed
// or ErrUnknownType, never ErrNewerVersion.
func TestDecodeGarbage(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		want    error
		version uint16 // the version Decode reports with the error
	}{
		{"empty", ``, events.ErrMalformed, 0},
		{"not json", `not json`, events.ErrMalformed, 0},
		{"truncated", `{"v":1,"t":3,"e":{"member":"a"`, events.ErrMalformed, 0},
		{"trailing garbage", `{"v":1,"t":3,"e":{}} x`, events.ErrMalformed, 0},
		{"array", `[1,3,{}]`, events.ErrMalformed, 0},
		{"null", `null`, events.ErrMalformed, 0},
		{"no version", `{"t":3,"e":{}}`, events.ErrMalformed, 0},
		{"version 0", `{"v":0,"t":3,"e":{}}`, events.ErrMalformed, 0},
		{"negative version", `{"v":-1,"t":3,"e":{}}`, events.ErrMalformed, 0},
		{"version overflows", `{"v":65536,"t":3,"e":{}}`, events.ErrMalformed, 0},
		{"version a string", `{"v":"1","t":3,"e":{}}`, events.ErrMalformed, 0},
		{"type a string", `{"v":1,"t":"member-left","e":{}}`, events.ErrMalformed, 0},
		{"no event", `{"v":1,"t":3}`, events.ErrMalformed, 1},
		{"null event", `{"v":1,"t":3,"e":null}`, events.ErrMalformed, 1},
		{"event an array", `{"v":1,"t":3,"e":[]}`, events.ErrMalformed, 1},
		{"event a string", `{"v":1,"t":3,"e":"x"}`, events.ErrMalformed, 1},
		{"field of the wrong type", `{"v":1,"t":3,"e":{"member":7}}`, events.ErrMalformed, 1},
		{"negative incarnation", `{"v":1,"t":3,"e":{"inc":-1}}`, events.ErrMalformed, 1},
		{"ranges not numbers", `{"v":1,"t":10,"e":{"moves":[{"p":["a"]}]}}`, events.ErrMalformed, 1},
		{"bad base64", `{"v":1,"t":150,"e":{"data":"!!"}}`, events.ErrMalformed, 1},
		{"no type", `{"v":1,"e":{}}`, events.ErrUnknownType, 1},
		{"unknown type", `{"v":1,"t":999,"e":{}}`, events.ErrUnknownType, 1},
		{"reserved type", `{"v":1,"t":8,"e":{}}`, events.ErrUnknownType, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, v, err := events.Decode([]byte(tc.body))
			if err == nil {
				t.Fatalf("decoded %#v", ev)
			}
			if ev != nil {
				t.Errorf("event %#v with error %v", ev, err)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want it to wrap %v", err, tc.want)
			}
			for _, other := range []error{events.ErrMalformed, events.ErrUnknownType, events.ErrNewerVersion} {
				if other != tc.want && errors.Is(err, other) {
					t.Errorf("err = %v also wraps %v", err, other)
				}
			}
			var ve *events.VersionError
			if errors.As(err, &ve) {
				t.Errorf("garbage gave a VersionError: %v", err)
			}
			if v != tc.version {
				t.Errorf("version %d, want %d", v, tc.version)
			}
		})
	}
}

// TestDecodeTolerates pins what is not garbage: unknown fields are ignored
// (an older reader of a same-version event), whitespace and key order do not
// matter.
func TestDecodeTolerates(t *testing.T) {
	want := &events.MemberLeft{Member: "a", Incarnation: 2}
	for _, body := range []string{
		`{"v":1,"t":3,"e":{"member":"a","inc":2}}`,
		` { "e" : { "inc" : 2 , "member" : "a" } , "t" : 3 , "v" : 1 } `,
		`{"v":1,"t":3,"e":{"member":"a","inc":2,"future":{"x":[1,2]}},"x":true}`,
	} {
		ev, v, err := events.Decode([]byte(body))
		if err != nil {
			t.Errorf("%s: %v", body, err)
			continue
		}
		if v != 1 {
			t.Errorf("%s: version %d", body, v)
		}
		if diff := cmp.Diff(want, ev); diff != "" {
			t.Errorf("%s (-want +got):\n%s", body, diff)
		}
	}
}

// TestDecodeNewerVersion: a well-formed envelope of a newer version is not
// garbage: a *VersionError wrapping ErrNewerVersion, whatever its type code
// and event fields (a newer protocol may change them).
func TestDecodeNewerVersion(t *testing.T) {
	v := events.MaxVersion + 1
	for _, tc := range []struct {
		body string
		typ  events.Type
	}{
		{fmt.Sprintf(`{"v":%d,"t":3,"e":{"member":"a","inc":1}}`, v), events.TypeMemberLeft},
		{fmt.Sprintf(`{"v":%d,"t":3,"e":{"member":["a new shape"]}}`, v), events.TypeMemberLeft},
		{fmt.Sprintf(`{"v":%d,"t":4000,"e":{}}`, v), 4000},
		{`{"v":65535,"t":11,"e":{}}`, events.TypePartitionsReleased},
	} {
		ev, gotV, err := events.Decode([]byte(tc.body))
		if ev != nil {
			t.Errorf("%s: decoded %#v", tc.body, ev)
		}
		var ve *events.VersionError
		if !errors.As(err, &ve) {
			t.Fatalf("%s: err = %v, want a *VersionError", tc.body, err)
		}
		if !errors.Is(err, events.ErrNewerVersion) {
			t.Errorf("%s: %v does not wrap ErrNewerVersion", tc.body, err)
		}
		if errors.Is(err, events.ErrMalformed) || errors.Is(err, events.ErrUnknownType) {
			t.Errorf("%s: newer version reported as garbage: %v", tc.body, err)
		}
		if ve.Version <= events.MaxVersion || ve.Version != gotV || ve.Type != tc.typ {
			t.Errorf("%s: VersionError %+v, version %d", tc.body, *ve, gotV)
		}
		if ve.Error() == "" {
			t.Error("empty message")
		}
	}
	// A newer envelope that is not well formed is still garbage.
	_, _, err := events.Decode(fmt.Appendf(nil, `{"v":%d,"t":3,"e":[]}`, v))
	if !errors.Is(err, events.ErrMalformed) || errors.Is(err, events.ErrNewerVersion) {
		t.Errorf("newer version with a non-object event: %v, want ErrMalformed", err)
	}
	_, _, err = events.Decode(fmt.Appendf(nil, `{"v":%d,"t":3,"e":{}`, v))
	if !errors.Is(err, events.ErrMalformed) || errors.Is(err, events.ErrNewerVersion) {
		t.Errorf("truncated newer version: %v, want ErrMalformed", err)
	}
}

func TestNewRecord(t *testing.T) {
	ts := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	h := map[string][]string{"K": {"v"}}
	body := events.MustEncode(1, &events.MemberLeft{Member: "a", Incarnation: 1})
	r := events.NewRecord(7, ts, "parti.g.log", h, body)
	want := events.Record{Seq: 7, Time: ts, Subject: "parti.g.log", Header: h, Body: body,
		Event: &events.MemberLeft{Member: "a", Incarnation: 1}, Version: 1}
	if diff := cmp.Diff(want, r, cmpopts.EquateErrors()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	bad := events.NewRecord(8, ts, "parti.g.log", nil, []byte("junk"))
	if bad.Event != nil || !errors.Is(bad.Err, events.ErrMalformed) || bad.Seq != 8 || string(bad.Body) != "junk" {
		t.Errorf("garbage record %+v", bad)
	}
	newer := events.NewRecord(9, ts, "parti.g.log", nil, []byte(`{"v":2,"t":3,"e":{}}`))
	if newer.Event != nil || !errors.Is(newer.Err, events.ErrNewerVersion) || newer.Version != 2 {
		t.Errorf("newer record %+v", newer)
	}
}

func TestToken(t *testing.T) {
	a, b, c := events.Token{Seq: 5, Incarnation: 9}, events.Token{Seq: 6, Incarnation: 1}, events.Token{Seq: 6, Incarnation: 2}
	if !a.Less(b) || b.Less(a) || !b.Less(c) || c.Less(b) || a.Less(a) {
		t.Error("Less is not the (Seq, Incarnation) order")
	}
	if got := c.String(); got != "6/2" {
		t.Errorf("String = %q", got)
	}
	data, err := json.Marshal(c)
	if err != nil || string(data) != `{"seq":6,"inc":2}` {
		t.Errorf("JSON = %s, %v", data, err)
	}
}

func TestRangesOf(t *testing.T) {
	for _, tc := range []struct {
		in   []uint32
		want events.Ranges
	}{
		{nil, nil},
		{[]uint32{}, nil},
		{[]uint32{7}, events.Ranges{7, 7}},
		{[]uint32{3, 1, 2}, events.Ranges{1, 3}},
		{[]uint32{5, 5, 5}, events.Ranges{5, 5}},
		{[]uint32{9, 0, 1, 4, 3, 3, 10, 12}, events.Ranges{0, 1, 3, 4, 9, 10, 12, 12}},
		{[]uint32{math.MaxUint32, 0, math.MaxUint32 - 1}, events.Ranges{0, 0, math.MaxUint32 - 1, math.MaxUint32}},
	} {
		in := slices.Clone(tc.in)
		got := events.RangesOf(tc.in)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("RangesOf(%v) (-want +got):\n%s", tc.in, diff)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("RangesOf modified its input: %v", tc.in)
		}
	}
}

// TestRangesProperties checks RangesOf against a naive reference on random
// inputs: the result is valid, holds exactly the distinct inputs, and Len,
// Each and Indices agree.
func TestRangesProperties(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := range 2000 {
		n := 1 + rng.IntN(200)
		in := make([]uint32, rng.IntN(60))
		for j := range in {
			in[j] = uint32(rng.IntN(n))
		}
		r := events.RangesOf(in)
		want := slices.Compact(slices.Sorted(slices.Values(in)))
		if err := r.Valid(n); err != nil {
			t.Fatalf("seed %d case %d: RangesOf(%v) = %v invalid: %v", seed, i, in, r, err)
		}
		if got := r.Indices(); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("seed %d case %d: Indices %v, want %v", seed, i, got, want)
		}
		if r.Len() != len(want) {
			t.Fatalf("seed %d case %d: Len %d, want %d", seed, i, r.Len(), len(want))
		}
		var each []uint32
		r.Each(func(x uint32) bool { each = append(each, x); return true })
		if !slices.Equal(each, r.Indices()) {
			t.Fatalf("seed %d case %d: Each %v", seed, i, each)
		}
	}
}

func TestRangesValid(t *testing.T) {
	for _, tc := range []struct {
		r  events.Ranges
		n  int
		ok bool
	}{
		{nil, 0, true},
		{events.Ranges{}, 0, true},
		{events.Ranges{0, 0}, 1, true},
		{events.Ranges{0, 0}, 0, false}, // out of range
		{events.Ranges{0, 4, 6, 9}, 10, true},
		{events.Ranges{0, 4, 6, 10}, 10, false}, // 10 out of 10
		{events.Ranges{0}, 10, false},           // odd
		{events.Ranges{0, 1, 2}, 10, false},     // odd
		{events.Ranges{3, 2}, 10, false},        // reversed
		{events.Ranges{0, 4, 5, 6}, 10, false},  // adjacent
		{events.Ranges{0, 4, 4, 6}, 10, false},  // overlapping
		{events.Ranges{5, 6, 0, 1}, 10, false},  // unsorted
		{events.Ranges{0, 4, 2, 3}, 10, false},  // nested
		{events.Ranges{math.MaxUint32, math.MaxUint32}, math.MaxInt, true},
		{events.Ranges{0, 0, math.MaxUint32, math.MaxUint32}, math.MaxInt, true},
		{events.Ranges{0, math.MaxUint32, 0, 0}, math.MaxInt, false}, // wraps around past MaxUint32
	} {
		err := tc.r.Valid(tc.n)
		if (err == nil) != tc.ok {
			t.Errorf("%v.Valid(%d) = %v, want ok=%v", tc.r, tc.n, err, tc.ok)
		}
	}
}

func TestRangesLenEachIndices(t *testing.T) {
	r := events.Ranges{2, 4, 7, 7, 10, 11}
	if r.Len() != 6 {
		t.Errorf("Len = %d", r.Len())
	}
	if got := r.Indices(); !slices.Equal(got, []uint32{2, 3, 4, 7, 10, 11}) {
		t.Errorf("Indices = %v", got)
	}
	var first3 []uint32
	r.Each(func(x uint32) bool { first3 = append(first3, x); return len(first3) < 3 })
	if !slices.Equal(first3, []uint32{2, 3, 4}) {
		t.Errorf("Each did not stop early: %v", first3)
	}
	// The top of the index space does not loop forever.
	top := events.Ranges{math.MaxUint32 - 1, math.MaxUint32}
	if got := top.Indices(); !slices.Equal(got, []uint32{math.MaxUint32 - 1, math.MaxUint32}) || top.Len() != 2 {
		t.Errorf("top Indices = %v, Len %d", got, top.Len())
	}
	if n := events.Ranges(nil).Len(); n != 0 {
		t.Errorf("nil Len = %d", n)
	}
	if got := events.Ranges(nil).Indices(); len(got) != 0 {
		t.Errorf("nil Indices = %v", got)
	}
}

// TestRangesJSON pins the wire form: a flat array of first, last pairs,
// never null.
func TestRangesJSON(t *testing.T) {
	for _, tc := range []struct {
		r    events.Ranges
		wire string
	}{
		{nil, `[]`},
		{events.Ranges{}, `[]`},
		{events.Ranges{3, 3}, `[3,3]`},
		{events.Ranges{0, 9, 20, 4294967295}, `[0,9,20,4294967295]`},
	} {
		data, err := json.Marshal(tc.r)
		if err != nil || string(data) != tc.wire {
			t.Errorf("Marshal(%#v) = %s, %v, want %s", tc.r, data, err, tc.wire)
			continue
		}
		var back events.Ranges
		if err := json.Unmarshal(data, &back); err != nil {
			t.Errorf("Unmarshal(%s): %v", data, err)
		}
		if diff := cmp.Diff(tc.r, back, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("round trip of %s (-want +got):\n%s", data, diff)
		}
	}
	// Inside a move, as decisions carry it.
	data, err := json.Marshal(events.Move{Parts: events.Ranges{1, 2}, To: "a", ToInc: 1})
	if err != nil || string(data) != `{"p":[1,2],"to":"a","to_inc":1}` {
		t.Errorf("move = %s, %v", data, err)
	}
	data, _ = json.Marshal(events.Move{To: "a", ToInc: 1})
	if string(data) != `{"p":[],"to":"a","to_inc":1}` {
		t.Errorf("empty move = %s", data)
	}
}

func TestValidID(t *testing.T) {
	for _, id := range []string{
		"a", "Z", "0", "_", "-", "worker-0", "worker_12", "ABCxyz-09_", strings.Repeat("x", events.MaxIDLen),
	} {
		if err := events.ValidID(id); err != nil {
			t.Errorf("ValidID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{
		"", strings.Repeat("x", events.MaxIDLen+1), "a.b", "a*", "a>", "a b", "a\tb", "a\n", "é", "a/b",
		"a:b", "$SYS", "a\x00", "ｗorker",
	} {
		err := events.ValidID(id)
		if !errors.Is(err, events.ErrInvalidID) {
			t.Errorf("ValidID(%q) = %v, want ErrInvalidID", id, err)
		}
	}
}

func TestValidPartitionID(t *testing.T) {
	for _, id := range []string{"x", "tenant/a.b c*>é", strings.Repeat("p", events.MaxPartitionIDLen)} {
		if err := events.ValidPartitionID(id); err != nil {
			t.Errorf("ValidPartitionID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", strings.Repeat("p", events.MaxPartitionIDLen+1)} {
		if err := events.ValidPartitionID(id); !errors.Is(err, events.ErrInvalidID) {
			t.Errorf("ValidPartitionID(%q) = %v, want ErrInvalidID", id, err)
		}
	}
}

// TestSubjects pins the subject map and checks that Parse inverts it.
func TestSubjects(t *testing.T) {
	s, err := events.NewSubjects("orders")
	if err != nil {
		t.Fatal(err)
	}
	for got, want := range map[string]string{
		s.Log():                           "parti.orders.log",
		s.Snapshot():                      "parti.orders.snap",
		s.Heartbeat("worker-1", 3):        "parti.orders.hb.worker-1.3",
		s.Heartbeats():                    "parti.orders.hb.>",
		s.All():                           "parti.orders.>",
		events.Subjects{Group: "g"}.Log(): "parti.g.log", // zero Prefix means "parti"
		events.Subjects{Group: "g", Prefix: "acme"}.Heartbeat("m", 1): "acme.g.hb.m.1",
	} {
		if got != want {
			t.Errorf("subject %q, want %q", got, want)
		}
	}
	for _, tc := range []struct {
		subject string
		kind    events.SubjectKind
		member  string
		inc     uint64
	}{
		{s.Log(), events.SubjectLog, "", 0},
		{s.Snapshot(), events.SubjectSnapshot, "", 0},
		{s.Heartbeat("worker-1", 3), events.SubjectHeartbeat, "worker-1", 3},
		{s.Heartbeat("A_b-9", math.MaxUint64), events.SubjectHeartbeat, "A_b-9", math.MaxUint64},
		{"parti.other.log", events.SubjectOther, "", 0},
		{"parti.orders2.log", events.SubjectOther, "", 0},
		{"parti.ordersXlog", events.SubjectOther, "", 0},
		{"acme.orders.log", events.SubjectOther, "", 0},
		{"parti.orders.log.x", events.SubjectOther, "", 0},
		{"parti.orders.", events.SubjectOther, "", 0},
		{"parti.orders", events.SubjectOther, "", 0},
		{"parti.orders.hb.worker-1", events.SubjectOther, "", 0},
		{"parti.orders.hb.worker-1.3.4", events.SubjectOther, "", 0},
		{"parti.orders.hb.worker-1.x", events.SubjectOther, "", 0},
		{"parti.orders.hb.worker-1.-1", events.SubjectOther, "", 0},
		{"parti.orders.hb.worker-1.18446744073709551616", events.SubjectOther, "", 0},
		{"parti.orders.hb..3", events.SubjectOther, "", 0},
		{"parti.orders.hb.a*b.3", events.SubjectOther, "", 0},
		{"parti.orders.hb.>", events.SubjectOther, "", 0},
		{"", events.SubjectOther, "", 0},
	} {
		kind, member, inc := s.Parse(tc.subject)
		if kind != tc.kind || member != tc.member || inc != tc.inc {
			t.Errorf("Parse(%q) = %v %q %d, want %v %q %d", tc.subject, kind, member, inc, tc.kind, tc.member, tc.inc)
		}
	}
	// Round trip over random valid member IDs and incarnations.
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
	for range 1000 {
		b := make([]byte, 1+rng.IntN(events.MaxIDLen))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		id, inc := string(b), rng.Uint64()
		kind, member, gotInc := s.Parse(s.Heartbeat(id, inc))
		if kind != events.SubjectHeartbeat || member != id || gotInc != inc {
			t.Fatalf("Parse(Heartbeat(%q, %d)) = %v %q %d", id, inc, kind, member, gotInc)
		}
	}
}

func TestNewSubjectsRejectsBadGroups(t *testing.T) {
	for _, g := range []string{"", "a.b", "a*", "a>", "a b", strings.Repeat("g", events.MaxIDLen+1)} {
		if _, err := events.NewSubjects(g); !errors.Is(err, events.ErrInvalidID) {
			t.Errorf("NewSubjects(%q) = %v, want ErrInvalidID", g, err)
		}
	}
	s, err := events.NewSubjects("g")
	if err != nil || s.Prefix != "parti" || s.Group != "g" {
		t.Errorf("NewSubjects(g) = %+v, %v", s, err)
	}
}
