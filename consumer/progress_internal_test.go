package consumer

import (
	"encoding/json"
	"fmt"
	"strings"
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

// The hand-written progress encoder writes exactly what encoding/json
// writes for the same record, whatever the partition IDs hold.
func TestAppendProgressRecordIsJSON(t *testing.T) {
	ids := []string{"p000", "", `odd "id".x`, `back\slash`, "tab\there", "<html>&", "é-ünïcode", "\u2028line", "bad\xffutf8", "max"}
	for _, member := range []string{"m1", `m"2`, ""} {
		for _, floors := range [][]progressEntry{nil, {}, {{Partition: "p", Floor: 0}}} {
			want, err := json.Marshal(progressRecord{Member: member, Floors: floors})
			if err != nil {
				t.Fatal(err)
			}
			if got := appendProgressRecord(nil, member, floors); string(got) != string(want) {
				t.Errorf("member %q, %d floors: got %s, want %s", member, len(floors), got, want)
			}
		}
		var floors []progressEntry
		for i, id := range ids {
			floors = append(floors, progressEntry{Partition: id, Floor: uint64(i) << (6 * i), Token: events.Token{Seq: ^uint64(0) >> i, Incarnation: uint64(i)}})
		}
		want, err := json.Marshal(progressRecord{Member: member, Floors: floors})
		if err != nil {
			t.Fatal(err)
		}
		got := appendProgressRecord(nil, member, floors)
		if string(got) != string(want) {
			t.Errorf("member %q: got %s, want %s", member, got, want)
		}
		var back progressRecord
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatal(err)
		}
		for i := range floors {
			if i < len(back.Floors) && back.Floors[i].Floor != floors[i].Floor {
				t.Errorf("entry %d: floor %d, want %d", i, back.Floors[i].Floor, floors[i].Floor)
			}
		}
	}
}

// The progress record of a member holding 4,096 busy partitions, as the
// committer writes it every CommitInterval in a drain.
func BenchmarkProgressRecord(b *testing.B) {
	floors := make([]progressEntry, 4096)
	for i := range floors {
		floors[i] = progressEntry{Partition: fmt.Sprintf("p%05d", i), Floor: 1_000_000 + uint64(i), Token: events.Token{Seq: 12345 + uint64(i), Incarnation: 2}}
	}
	b.Run("json", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(progressRecord{Member: "member-1", Floors: floors}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append", func(b *testing.B) {
		for b.Loop() {
			_ = appendProgressRecord(nil, "member-1", floors)
		}
	})
}

// A tenure goes to the first progress chunk with room for its entry; a
// new chunk opens only when none has, and room given back is used again.
func TestReserveChunkFillsFirstWithRoom(t *testing.T) {
	n := progressEntryBytes("p0")
	e := &engine{progBudget: 2 * n}
	var got []int
	for _, id := range []string{"p0", "p1", "p2", "p3", "p4"} {
		got = append(got, e.reserveChunk(id))
	}
	if want := []int{0, 0, 1, 1, 2}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("chunks %v, want %v", got, want)
	}
	e.chunkUse[1] -= n // a tenure of chunk 1 ended
	if k := e.reserveChunk("p5"); k != 1 {
		t.Fatalf("after chunk 1 gave room back, the next tenure went to chunk %d", k)
	}
	if k := e.reserveChunk(strings.Repeat("x", 3*n)); k != 3 {
		t.Fatalf("an entry larger than the budget went to chunk %d, want a chunk of its own (3)", k)
	}
}

// The budget is half of the smaller of the server's max_payload and the
// floor stream's largest message, less room for the record's header.
func TestProgressBudget(t *testing.T) {
	for _, c := range []struct {
		payload int64
		msgSize int32
		want    int
	}{
		{1 << 20, -1, 1<<19 - 1024},
		{1 << 20, 0, 1<<19 - 1024},
		{8 << 20, 1 << 20, 1<<19 - 1024},
		{0, 0, 1<<19 - 1024},
		{1000, 0, 1024},
	} {
		if got := progressBudget(c.payload, c.msgSize); got != c.want {
			t.Errorf("progressBudget(%d, %d) = %d, want %d", c.payload, c.msgSize, got, c.want)
		}
	}
}
