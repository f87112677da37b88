package main

import (
	"testing"

	"github.com/parti-io/parti/events"
)

// A decision of three parts is one decision of three parts whose bytes are
// the sum of its parts'; a single-message one (Parts 0) counts as one part;
// the tail of a batch whose first part lies before the span is not counted
// as a decision (its parts still count for the largest part).
func TestBatchStatSumsWholeBatches(t *testing.T) {
	var s batchStat
	s.add(1, 2, 700) // the tail of a batch begun before the span
	s.add(0, 3, 100)
	s.add(1, 3, 200)
	s.add(2, 3, 300)
	s.add(0, 0, 50)
	if s.count != 2 || s.parts != 4 || s.maxParts != 3 || s.bytes != 650 || s.maxBytes != 600 || s.maxPartBytes != 700 {
		t.Errorf("got %+v; want 2 decisions, 4 parts (max 3), 650 B (max 600), largest part 700 B", s)
	}
}

// A message's size is its body and its headers as NATS sends them.
func TestMsgBytesCountsHeaders(t *testing.T) {
	r := &events.Record{Body: []byte("12345")}
	if got := msgBytes(r); got != 5 {
		t.Errorf("no headers: %d, want 5", got)
	}
	r.Header = map[string][]string{"K": {"v1", "v22"}}
	// "NATS/1.0\r\n" (10) + "K: v1\r\n" (7) + "K: v22\r\n" (8) + "\r\n" (2) + 5
	if got := msgBytes(r); got != 32 {
		t.Errorf("with headers: %d, want 32", got)
	}
}
