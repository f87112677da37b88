package test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/projection"
)

// heldSpan is one assignment as a member saw it, on the shared clock: when
// it was handed over, when its context ended (the member stopped treating
// it as owned) and when Revoked was called.
type heldSpan struct {
	member               string
	part                 string
	token                events.Token
	assigned, ctxEnd, rv time.Duration
	ctxEndWall           time.Time
}

// TestNewerProtocolStopsOldMembers appends, while a fleet is live, a
// well-formed record of protocol version events.MaxVersion+1 to the group's
// log, as a newer build would after a bump (DESIGN rule 8). Every member of
// this build must then stop acting and heartbeating, with an error that
// errors.Is matches to parti.ErrNewerProtocol; its ownership ends no later
// than its lease deadline; nobody diverges (every member's state, and an
// independent refold of the log, agree at the same sequence); nothing more
// is appended to the group's stream by these members (no heartbeat, no
// verdict, no decision); and a process of this build that joins afterwards
// stops in the same way.
//
// What this does not show: that the partitions then move. Only a member that
// reads the newer version could expire the stopped ones and take their
// partitions over, and there is no such build (events.MaxVersion is a
// constant of the public events package). The test shows the precondition a
// newer judge needs: every old incarnation's heartbeat subject stays silent
// for several expiries after it stopped, and every old lease has run out.
func TestNewerProtocolStopsOldMembers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	const group = "protover"
	timings := testTimings()
	f := newFleet(t, js, group, 32)
	clk := f.rec.clk

	var mu sync.Mutex
	var spans []*heldSpan
	spy := func(name string) parti.Handler {
		return parti.HandlerFuncs{
			OnAssigned: func(a parti.Assignment) {
				sp := &heldSpan{member: name, part: a.Partition, token: a.Token, assigned: clk.Now()}
				mu.Lock()
				spans = append(spans, sp)
				mu.Unlock()
				context.AfterFunc(a.Context, func() {
					at, wall := clk.Now(), time.Now()
					mu.Lock()
					sp.ctxEnd, sp.ctxEndWall = at, wall
					mu.Unlock()
				})
			},
			OnRevoked: func(a parti.Assignment, _ parti.RevokeReason) {
				at := clk.Now()
				mu.Lock()
				defer mu.Unlock()
				for _, sp := range spans {
					if sp.member == name && sp.part == a.Partition && sp.token == a.Token && sp.rv == 0 {
						sp.rv = at
					}
				}
			},
		}
	}
	// Each member's handler is the recorder's (for the overlap check) and
	// the spy's.
	members := map[string]*parti.Member{}
	f.base.ExpectedMembers = 4
	var wg sync.WaitGroup
	var jmu sync.Mutex
	errs := make(chan error, 4)
	for i := range 4 {
		id := fmt.Sprintf("w%02d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var m *parti.Member
			var mm sync.Mutex
			lease := func() time.Duration {
				mm.Lock()
				defer mm.Unlock()
				if m == nil {
					return 0
				}
				return m.LeaseDeadline()
			}
			rec, sp := f.rec.handler(id, lease).(parti.HandlerFuncs), spy(id)
			cfg := f.base
			cfg.ID = id
			cfg.Handler = parti.HandlerFuncs{
				OnAssigned: func(a parti.Assignment) { rec.OnAssigned(a); sp.Assigned(a) },
				OnRevoked:  func(a parti.Assignment, why parti.RevokeReason) { rec.OnRevoked(a, why); sp.Revoked(a, why) },
			}
			jm, err := parti.Join(ctx, js, cfg)
			if err != nil {
				errs <- err
				return
			}
			mm.Lock()
			m = jm
			mm.Unlock()
			jmu.Lock()
			members[id] = jm
			jmu.Unlock()
			f.mu.Lock()
			f.members[id] = jm
			f.leases[id] = lease
			f.mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("join: %v", err)
	}
	f.base.ExpectedMembers = 0
	f.waitSettled(60 * time.Second)
	// Let the fleet run a few heartbeats in the stable state.
	<-time.After(2 * timings.Heartbeat)

	subj, _ := events.NewSubjects(group)
	incs := map[string]uint64{}
	for id, m := range members {
		incs[id] = m.Incarnation()
	}
	bumpAt := clk.Now()
	bumpSeq := appendNewerVersion(t, ctx, js, group)

	// Every member stops, saying why.
	samples := newStateSampler()
	for id, m := range members {
		select {
		case <-m.Done():
		case <-time.After(timings.Expiry + 30*time.Second):
			t.Fatalf("%s still runs after a newer protocol version landed at %d", id, bumpSeq)
		}
		if err := m.Err(); !errors.Is(err, parti.ErrNewerProtocol) {
			t.Errorf("%s stopped with %v, want an error matching parti.ErrNewerProtocol", id, err)
		}
		if a := m.Assigned(); len(a) != 0 {
			t.Errorf("%s still acts on %d partitions after it stopped", id, len(a))
		}
		st := m.State()
		if st.NewerVersionAt != bumpSeq {
			t.Errorf("%s: NewerVersionAt %d, want %d", id, st.NewerVersionAt, bumpSeq)
		}
		if err := samples.sample(id, st); err != nil {
			t.Error(err)
		}
	}

	// Ownership ended no later than the lease deadline. A lease runs from
	// the send time of the member's last acknowledged heartbeat, which is
	// before the server stored it: the deadline is at most the stored time
	// of the incarnation's last heartbeat plus the lease (server and test
	// share the machine's wall clock). Each assignment's context ended by
	// then (give or take the member's timer: slack Margin), Owns says no,
	// and every revocation reached the handler.
	stream, err := js.Stream(ctx, projection.StreamName(group))
	if err != nil {
		t.Fatal(err)
	}
	lastHB := map[string]*jetstream.RawStreamMsg{}
	hbAfter := 0 // last heartbeats stored after the bump (sent before it was folded)
	for id := range members {
		m, err := stream.GetLastMsgForSubject(ctx, subj.Heartbeat(id, incs[id]))
		if err != nil {
			t.Fatalf("last heartbeat of %s: %v", id, err)
		}
		lastHB[id] = m
		if m.Sequence > bumpSeq {
			hbAfter++
		}
	}
	waitFor(t, 10*time.Second, "every revocation to reach the handlers", func() bool { return f.rec.open() == 0 })
	mu.Lock()
	held, worstPast := 0, -time.Hour
	for _, sp := range spans {
		if sp.rv != 0 && sp.rv < bumpAt {
			continue // given up before the bump
		}
		held++
		if sp.ctxEnd == 0 || sp.rv == 0 {
			t.Errorf("%s's assignment of %s (token %s) never ended", sp.member, sp.part, sp.token)
			continue
		}
		deadline := lastHB[sp.member].Time.Add(timings.Lease)
		past := sp.ctxEndWall.Sub(deadline)
		worstPast = max(worstPast, past)
		if past > timings.Margin {
			t.Errorf("%s stopped acting on %s %v after its lease deadline (margin %v)", sp.member, sp.part, past, timings.Margin)
		}
		if members[sp.member].Owns(sp.part, sp.token) {
			t.Errorf("%s still owns %s after it stopped", sp.member, sp.part)
		}
	}
	mu.Unlock()
	if held == 0 {
		t.Fatal("no assignment was held at the bump")
	}
	f.checkNoOverlap()

	// Nothing more is appended: no heartbeat, no verdict, no log record,
	// for three expiries after every member stopped (a judge of a newer
	// build would expire them all).
	last := streamLastSeq(t, ctx, js, projection.StreamName(group))
	<-time.After(3 * timings.Expiry)
	if now := streamLastSeq(t, ctx, js, projection.StreamName(group)); now != last {
		t.Errorf("the group's stream grew from %d to %d after every member stopped", last, now)
	}
	for id := range members {
		m, err := stream.GetLastMsgForSubject(ctx, subj.Heartbeat(id, incs[id]))
		if err != nil {
			t.Fatalf("last heartbeat of %s: %v", id, err)
		}
		if m.Sequence != lastHB[id].Sequence {
			t.Errorf("%s heartbeated at %d after it stopped", id, m.Sequence)
		}
		if _, ok := decodeEvent(m.Data).(*events.Heartbeat); !ok {
			t.Errorf("the last message of %s's heartbeat subject is %T, not its heartbeat (a verdict?)", id, decodeEvent(m.Data))
		}
	}
	after := logAfter(t, ctx, js, group, bumpSeq)
	for _, r := range after {
		if _, ok := r.Event.(*events.AssignmentDecided); ok {
			t.Errorf("a decision landed at %d, after the newer protocol record at %d", r.Seq, bumpSeq)
		}
	}

	// A process of this build that joins now stops the same way.
	cfg := f.base
	cfg.ID = "late"
	jctx, jcancel := context.WithTimeout(ctx, 30*time.Second)
	late, err := parti.Join(jctx, js, cfg)
	jcancel()
	switch {
	case err == nil:
		select {
		case <-late.Done():
		case <-time.After(timings.Expiry + 10*time.Second):
			t.Fatal("a member of this build joined after the bump and keeps running")
		}
		if !errors.Is(late.Err(), parti.ErrNewerProtocol) {
			t.Errorf("the late member stopped with %v, want parti.ErrNewerProtocol", late.Err())
		}
		if err := samples.sample("late", late.State()); err != nil {
			t.Error(err)
		}
	case !errors.Is(err, parti.ErrNewerProtocol):
		t.Errorf("a late join after the bump failed with %v, want parti.ErrNewerProtocol", err)
	}
	claims := 0
	for _, r := range logAfter(t, ctx, js, group, bumpSeq) {
		if _, ok := r.Event.(*events.MemberClaimed); ok {
			claims++
		}
	}

	// Nobody diverged: the states agree with each other and with a refold.
	refoldCompare(t, ctx, js, group, samples, "")
	t.Logf("bump at log sequence %d: %d members stopped with parti.ErrNewerProtocol; %d assignments held at the bump, "+
		"the latest ended %v after its lease deadline (negative: before); %d members' last heartbeat landed after the bump; "+
		"%d log records after the bump from the fleet, then %d claims by the late joiner",
		bumpSeq, len(members), held, worstPast, hbAfter, len(after), claims)
}

func decodeEvent(body []byte) events.Event {
	ev, _, _ := events.Decode(body)
	return ev
}

func newStateSampler() *stateSampler {
	return &stateSampler{at: map[uint64]string{}, who: map[uint64]string{}}
}
