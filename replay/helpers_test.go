package replay

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

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

// newServer starts a server that the caller stops.
func newServer(opts *server.Options) (*server.Server, error) {
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, err
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("server not ready")
	}
	return s, nil
}
