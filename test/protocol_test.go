package test

import (
	"context"
	"testing"
	"time"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/natstest"
)

// TestStrayNewerEnvelopeStopsNobody appends, while a fleet is live, a
// well-formed record of protocol version events.MaxVersion+1 to the group's
// log and to every member's heartbeat subject, as a confused process might.
// It used to stop every member for good (a one-message denial of service);
// now it is junk (DESIGN rule 8): nobody stops, nobody changes incarnation,
// nothing moves, and every member's state agrees with an independent refold.
// (That a valid version-set event does stop an older build is shown by
// TestRollingUpgradeToVersion2, with a real second version.)
func TestStrayNewerEnvelopeStopsNobody(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	const group = "protostray"
	f := newFleet(t, js, group, 32)
	coldStart(t, ctx, f, 3)
	before := f.owners()
	intervals := intervalsTotal(f.rec)
	incs := map[string]uint64{}
	for _, m := range f.all() {
		incs[m.ID()] = m.Incarnation()
	}
	seq := appendNewerVersion(t, ctx, js, group)
	subj, _ := events.NewSubjects(group)
	hb := events.MustEncode(events.MaxVersion+1, &events.Heartbeat{Nonce: "a-newer-build"})
	for id, inc := range incs {
		if _, err := js.Publish(ctx, subj.Heartbeat(id, inc), hb); err != nil {
			t.Fatal(err)
		}
	}
	<-time.After(2 * f.base.Timings.Expiry)
	samples := newStateSampler()
	for _, m := range f.all() {
		if err := m.Err(); err != nil {
			t.Fatalf("%s stopped after a stray newer-version record at %d: %v", m.ID(), seq, err)
		}
		if m.Incarnation() != incs[m.ID()] {
			t.Fatalf("%s went from incarnation %d to %d", m.ID(), incs[m.ID()], m.Incarnation())
		}
		st := m.State()
		if st.NewerVersionAt != 0 || st.Counters.Skipped == 0 {
			t.Fatalf("%s: NewerVersionAt %d, skipped %d; want 0 and the stray record skipped", m.ID(), st.NewerVersionAt, st.Counters.Skipped)
		}
		if err := samples.sample(m.ID(), st); err != nil {
			t.Fatal(err)
		}
	}
	if n := moved(before, f.owners()); n != 0 || intervalsTotal(f.rec) != intervals {
		t.Fatalf("%d partitions moved, %d ownership intervals (was %d)", n, intervalsTotal(f.rec), intervals)
	}
	refoldCompare(t, ctx, js, group, samples, "")
	f.checkNoOverlap()
}

func decodeEvent(body []byte) events.Event {
	ev, _, _ := events.Decode(body)
	return ev
}

func newStateSampler() *stateSampler {
	return &stateSampler{at: map[uint64]string{}, who: map[uint64]string{}}
}
