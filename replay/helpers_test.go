package replay

import (
	"testing"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/replay/replaytest"
)

// scenario returns the records of replaytest.Scenario.
func scenario(t testing.TB) []events.Record {
	t.Helper()
	rec := replaytest.NewRecorder(replaytest.Base, replaytest.Step)
	b, err := replaytest.NewBuilder("orders", rec)
	if err != nil {
		t.Fatal(err)
	}
	replaytest.Scenario(b)
	if b.Err() != nil {
		t.Fatal(b.Err())
	}
	return rec.Records
}

// violations returns the records of replaytest.ViolationScenario.
func violations(t testing.TB) []events.Record {
	t.Helper()
	rec := replaytest.NewRecorder(replaytest.Base, replaytest.Step)
	b, err := replaytest.NewBuilder("orders", rec)
	if err != nil {
		t.Fatal(err)
	}
	replaytest.ViolationScenario(b, rec)
	if b.Err() != nil {
		t.Fatal(b.Err())
	}
	return rec.Records
}

func memSource(t testing.TB, recs []events.Record) *MemorySource {
	t.Helper()
	src, err := NewMemorySource("", recs)
	if err != nil {
		t.Fatal(err)
	}
	return src
}
