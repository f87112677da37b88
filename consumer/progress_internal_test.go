package consumer

import (
	"encoding/json"
	"testing"

	"github.com/parti-io/parti/events"
)

// A progress record's entries survive the round trip, and a malformed
// entry is an error (the reader then keeps the partition's own floor).
func TestProgressRecordRoundTrip(t *testing.T) {
	in := progressRecord{Member: "m1", Floors: []progressEntry{
		{Partition: `odd "id".x`, Floor: 42, Token: events.Token{Seq: 1 << 60, Incarnation: 3}},
		{Partition: "p2", Floor: 7, Token: events.Token{Seq: 9, Incarnation: 1}},
	}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out progressRecord
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Member != in.Member || len(out.Floors) != 2 || out.Floors[0] != in.Floors[0] || out.Floors[1] != in.Floors[1] {
		t.Fatalf("round trip: got %+v, want %+v", out, in)
	}
	for _, bad := range []string{`{"floors":[["p",1,2]]}`, `{"floors":[["p","x",2,3]]}`, `{"floors":[{"p":1}]}`} {
		if err := json.Unmarshal([]byte(bad), &out); err == nil {
			t.Errorf("%s: decoded without an error", bad)
		}
	}
}
