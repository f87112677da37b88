package events_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/parti-io/parti/events"
)

// update rewrites the golden files: go test ./events -run Golden -update.
// Review the diff: a changed line is a changed wire format, and old history
// must still decode.
var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// goldenPath holds one record per event type, one JSON object a line.
var goldenPath = filepath.Join("testdata", "records.jsonl")

// goldenRecord is one line of the golden file: a stream message as the fold
// receives it. Body is the exact wire body, embedded as raw JSON so the file
// stays readable; it is compared byte for byte.
type goldenRecord struct {
	Seq     uint64              `json:"seq"`
	Time    time.Time           `json:"time"`
	Subject string              `json:"subject"`
	Headers map[string][]string `json:"headers,omitempty"`
	Body    json.RawMessage     `json:"body"`
}

// sample is one event of each type, every field set, in the record the
// golden file pins it in.
type sample struct {
	name    string // the type's wire name
	seq     uint64
	subject string
	headers map[string][]string
	event   events.Event
}

var goldenBase = time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)

const (
	logSubject  = "parti.orders.log"
	hbSubject   = "parti.orders.hb.worker-1.3"
	snapSubject = "parti.orders.snap"
)

// samples returns one fully populated event of every type, in code order
// for the first fourteen; types added later are appended at the end, so that
// the lines pinned before them never change. TestGolden checks that it covers
// every known type code.
func samples() []sample {
	fence := func(seq string) map[string][]string {
		return map[string][]string{"Nats-Expected-Last-Subject-Sequence": {seq}}
	}
	return []sample{
		{"protocol-version-set", 1, logSubject, fence("0"),
			&events.ProtocolVersionSet{Version: 1, By: "worker-0"}},
		{"member-claimed", 2, logSubject, nil,
			&events.MemberClaimed{ID: "worker-1", Nonce: "4f1c9a2be07d3e55", MaxProtocol: 1}},
		{"member-left", 3, logSubject, nil,
			&events.MemberLeft{Member: "worker-2", Incarnation: 7}},
		{"member-closing", 4, logSubject, nil,
			&events.MemberClosing{Member: "worker-3", Incarnation: 2}},
		{"grace-ended", 5, logSubject, fence("4"),
			&events.GraceEnded{Member: "worker-3", Incarnation: 2, SpanMillis: 30000}},
		{"member-removed", 6, logSubject, nil,
			&events.MemberRemoved{Member: "worker-4", Incarnation: 5, Reason: events.ReasonExpired,
				VerdictSeq: 9182, Judge: "worker-5", SpanMillis: 6120}},
		{"partitions-declared", 7, logSubject, map[string][]string{
			"Nats-Expected-Last-Subject-Sequence": {"6"},
			"Nats-Batch-Id":                       {"decl-2-0b5e"},
			"Nats-Batch-Sequence":                 {"1"},
		},
			&events.PartitionsDeclared{Version: 2, Part: 0, Parts: 2, IDs: []string{"tenant-a", "tenant-b", "tenant/c é"},
				Weights: []uint32{1, 5, 2}, Strategy: "weighted-consistent-hash", By: "worker-0"}},
		{"window-closed", 8, logSubject, fence("7"),
			&events.WindowClosed{By: "worker-0", SpanMillis: 100}},
		{"assignment-decided", 9, logSubject, fence("8"),
			&events.AssignmentDecided{Generation: 12, BasedOn: 8, Leader: "worker-0", LeaderInc: 1, Strategy: "sticky",
				Reason: events.DecideRebalance, Part: 1, Parts: 3, Moves: []events.Move{
					{Parts: events.Ranges{0, 4, 9, 9}, To: "worker-1", ToInc: 3},
					{Parts: events.Ranges{17, 17}, From: "worker-2", FromInc: 7, To: "worker-6", ToInc: 1},
				}}},
		{"partitions-released", 10, logSubject, nil,
			&events.PartitionsReleased{Member: "worker-2", Incarnation: 7,
				Released: []events.Released{{Partition: 17, Token: 9}, {Partition: 40, Token: 3}}}},
		{"operator-action", 11, logSubject, nil,
			&events.OperatorAction{Action: events.OpMove, Member: "worker-2", Partition: "tenant-b",
				Target: "worker-6", By: "alice", Note: "hot tenant <&> \"quoted\""}},
		{"heartbeat", 12, hbSubject, map[string][]string{
			"Nats-Expected-Last-Subject-Sequence": {"0"},
			"Nats-TTL":                            {"2m0s"},
		},
			&events.Heartbeat{Nonce: "4f1c9a2be07d3e55", Applied: 11}},
		{"expiry-verdict", 13, hbSubject, fence("12"),
			&events.ExpiryVerdict{Member: "worker-1", Incarnation: 3, Judge: "worker-2", JudgeInc: 7,
				LastSeen: 12, SpanMillis: 6004}},
		{"snapshot-chunk", 14, snapSubject, map[string][]string{"Nats-TTL": {"1h0m0s"}},
			&events.SnapshotChunk{UpTo: 11, Hash: "9f86d081884c7d659a2feaa0c55ad015", Part: 0, Parts: 1,
				Data: []byte(`{"protocol":1}`)}},
		{"genesis", 9300, "parti.orders-g2.log", map[string][]string{
			"Nats-Expected-Last-Subject-Sequence": {"0"},
			"Nats-Batch-Id":                       {"genesis-orders-g2"},
			"Nats-Batch-Sequence":                 {"1"},
		},
			&events.Genesis{FromGroup: "orders", FromStream: "PARTI_orders", UpTo: 9182,
				Hash: "9f86d081884c7d659a2feaa0c55ad015", Part: 0, Parts: 2,
				State: []byte(`{"protocol":1,`), By: "alice", Note: "log older than 3 years"}},
	}
}

// goldenLine is the golden file's line for r: the record's metadata, then the
// body appended verbatim.
func goldenLine(t testing.TB, r goldenRecord) []byte {
	t.Helper()
	body := r.Body
	r.Body = nil
	head, err := json.Marshal(struct {
		Seq     uint64              `json:"seq"`
		Time    time.Time           `json:"time"`
		Subject string              `json:"subject"`
		Headers map[string][]string `json:"headers,omitempty"`
	}{r.Seq, r.Time, r.Subject, r.Headers})
	if err != nil {
		t.Fatal(err)
	}
	line := append(head[:len(head)-1:len(head)-1], `,"body":`...)
	line = append(line, body...)
	return append(line, "}\n"...)
}

// goldenFile encodes every sample and returns the file's expected bytes.
func goldenFile(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, s := range samples() {
		body, err := events.Encode(events.MaxVersion, s.event)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		buf.Write(goldenLine(t, goldenRecord{
			Seq: s.seq, Time: goldenBase.Add(time.Duration(s.seq) * time.Millisecond),
			Subject: s.subject, Headers: s.headers, Body: body,
		}))
	}
	return buf.Bytes()
}

// readGolden parses the golden file; each Body holds the exact bytes of the
// line's body.
func readGolden(t testing.TB) []goldenRecord {
	t.Helper()
	data, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (run go test ./events -run Golden -update to create it)", err)
	}
	var out []goldenRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		var r goldenRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s:%d: %v", goldenPath, n, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGolden pins the wire format: the golden file must equal, byte for
// byte, the records built by encoding every sample event; and every golden
// body must decode to its sample, as a record, at version 1.
func TestGolden(t *testing.T) {
	want := goldenFile(t)
	if *update {
		if err := os.MkdirAll(filepath.Dir(goldenPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s", goldenPath)
	}
	got, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (run go test ./events -run Golden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the encoder's output (the wire format changed?)\n(-file +encoder):\n%s",
			goldenPath, cmp.Diff(string(got), string(want)))
	}

	recs := readGolden(t)
	ss := samples()
	if len(recs) != len(ss) {
		t.Fatalf("golden file has %d records, want %d (one per event type)", len(recs), len(ss))
	}
	seen := map[events.Type]bool{}
	for i, gr := range recs {
		s := ss[i]
		r := events.NewRecord(gr.Seq, gr.Time, gr.Subject, gr.Headers, gr.Body)
		if r.Err != nil {
			t.Errorf("record %d (%s): %v", gr.Seq, s.name, r.Err)
			continue
		}
		if r.Version != 1 {
			t.Errorf("record %d: version %d, want 1", gr.Seq, r.Version)
		}
		if diff := cmp.Diff(s.event, r.Event); diff != "" {
			t.Errorf("record %d (%s) decodes differently (-sample +decoded):\n%s", gr.Seq, s.name, diff)
		}
		if got := r.Event.Type().String(); got != s.name {
			t.Errorf("record %d: type %q, want %q", gr.Seq, got, s.name)
		}
		wantRec := events.Record{
			Seq: s.seq, Time: goldenBase.Add(time.Duration(s.seq) * time.Millisecond), Subject: s.subject,
			Header: s.headers, Body: gr.Body, Event: s.event, Version: 1,
		}
		if diff := cmp.Diff(wantRec, r, cmpopts.EquateErrors()); diff != "" {
			t.Errorf("record %d (-want +got):\n%s", gr.Seq, diff)
		}
		if seen[r.Event.Type()] {
			t.Errorf("record %d: type %s appears twice", gr.Seq, r.Event.Type())
		}
		seen[r.Event.Type()] = true
	}
	for _, c := range knownCodes() {
		if !seen[c] {
			t.Errorf("no golden record for type %d (%s)", uint16(c), c)
		}
	}
}
