package events_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/parti-io/parti/events"
)

// A member encodes its release for the log; a reader decodes the body into
// the record the fold consumes.
func Example() {
	body, err := events.Encode(events.MaxVersion, &events.PartitionsReleased{
		Member: "worker-2", Incarnation: 7,
		Released: []events.Released{{Partition: 17, Token: 9}},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(body))

	// The server assigns the sequence and the time; the reader adds them.
	r := events.NewRecord(42, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "parti.orders.log", nil, body)
	if r.Err != nil {
		panic(r.Err)
	}
	rel := r.Event.(*events.PartitionsReleased)
	fmt.Printf("seq %d: %s by %s/%d of partition %d (token %d)\n",
		r.Seq, r.Event.Type(), rel.Member, rel.Incarnation, rel.Released[0].Partition, rel.Released[0].Token)
	// Output:
	// {"v":1,"t":11,"e":{"member":"worker-2","inc":7,"released":[{"p":17,"token":9}]}}
	// seq 42: partitions-released by worker-2/7 of partition 17 (token 9)
}

// Decode tells garbage (skip it, count it) from a newer protocol (stop
// acting).
func ExampleDecode() {
	for _, body := range []string{
		`{"v":1,"t":3,"e":{"member":"worker-1","inc":2}}`,
		`{"v":1,"t":999,"e":{}}`,
		`not json`,
		`{"v":2,"t":3,"e":{"member":"worker-1","inc":2}}`,
	} {
		ev, v, err := events.Decode([]byte(body))
		var newer *events.VersionError
		switch {
		case err == nil:
			fmt.Printf("v%d %s: %+v\n", v, ev.Type(), ev)
		case errors.As(err, &newer):
			fmt.Printf("protocol %d is newer than %d: stop acting\n", newer.Version, events.MaxVersion)
		case errors.Is(err, events.ErrUnknownType):
			fmt.Println("unknown type: garbage, skipped")
		case errors.Is(err, events.ErrMalformed):
			fmt.Println("malformed: garbage, skipped")
		}
	}
	// Output:
	// v1 member-left: &{Member:worker-1 Incarnation:2}
	// unknown type: garbage, skipped
	// malformed: garbage, skipped
	// protocol 2 is newer than 1: stop acting
}

// A group's subjects, and classifying a subject a message arrived on.
func ExampleSubjects() {
	s, err := events.NewSubjects("orders")
	if err != nil {
		panic(err)
	}
	fmt.Println(s.All())
	fmt.Println(s.Log())
	hb := s.Heartbeat("worker-3", 2)
	fmt.Println(hb)
	kind, member, inc := s.Parse(hb)
	fmt.Println(kind == events.SubjectHeartbeat, member, inc)
	kind, _, _ = s.Parse("parti.other.log")
	fmt.Println(kind == events.SubjectOther)

	fmt.Println(events.ValidID("worker-3") == nil, errors.Is(events.ValidID("a.b"), events.ErrInvalidID))
	// Output:
	// parti.orders.>
	// parti.orders.log
	// parti.orders.hb.worker-3.2
	// true worker-3 2
	// true
	// true true
}

// Decisions name partitions by index ranges into the declared set.
func ExampleRangesOf() {
	r := events.RangesOf([]uint32{9, 2, 3, 4, 7, 3})
	fmt.Println(r, r.Len(), r.Valid(10) == nil, r.Valid(9) == nil)
	fmt.Println(r.Indices())
	// Output:
	// [2 4 7 7 9 9] 5 true false
	// [2 3 4 7 9]
}
