package test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/clock"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/internal/testhooks"
)

// groupLog reads every record of the group's stream (the log and the
// heartbeat subjects), in order.
func groupLog(t *testing.T, js jetstream.JetStream, group string) []events.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "PARTI_"+group)
	if err != nil {
		t.Fatalf("stream of %s: %v", group, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []events.Record
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		msg, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("get %d: %v", seq, err)
		}
		out = append(out, events.NewRecord(msg.Sequence, msg.Time, msg.Subject, msg.Header, msg.Data))
	}
	return out
}

// logSummary is what a test asserts about one member ID in the log.
type logSummary struct {
	closing, left, removed, verdicts, graceEnded int
	// movesAfterClose counts partitions moved (from a live owner or to a
	// new one) by decisions after the ID's first close.
	movesAfterClose int
}

func summarize(recs []events.Record, id string) logSummary {
	var s logSummary
	for _, r := range recs {
		switch e := r.Event.(type) {
		case *events.MemberClosing:
			if e.Member == id {
				s.closing++
			}
		case *events.MemberLeft:
			if e.Member == id {
				s.left++
			}
		case *events.MemberRemoved:
			if e.Member == id {
				s.removed++
			}
		case *events.ExpiryVerdict:
			if e.Member == id {
				s.verdicts++
			}
		case *events.GraceEnded:
			if e.Member == id {
				s.graceEnded++
			}
		case *events.AssignmentDecided:
			if s.closing > 0 {
				for _, mv := range e.Moves {
					s.movesAfterClose += mv.Parts.Len()
				}
			}
		}
	}
	return s
}

// Issue 11, item 1: the context given to Join bounds joining only. Once it
// is cancelled the member goes on heartbeating and owning (past an expiry),
// and Close, given its own context, appends the close. A second Close and a
// Leave after it say the member stopped.
func TestJoinContextBoundsJoiningOnly(t *testing.T) {
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	f := newFleet(t, js, "lifelong", 8)
	f.base.ExpectedMembers = 1
	jctx, jcancel := context.WithCancel(context.Background())
	m := f.join(jctx, "w0")
	f.waitSettled(30 * time.Second)
	jcancel()
	boot := clock.Boot()
	at := boot.Now()
	tm := f.base.Timings
	// A lease deadline past at+Expiry+Lease comes from a heartbeat acked
	// more than an expiry after the cancel.
	waitFor(t, 10*tm.Expiry, "heartbeats acked an expiry after Join's context ended", func() bool {
		select {
		case <-m.Done():
			t.Fatalf("the member stopped when Join's context ended: %v", m.Err())
		default:
		}
		return testhooks.LeaseDeadline(m) > at+tm.Expiry+tm.Lease
	})
	if got := len(m.Assigned()); got != 8 {
		t.Fatalf("the member acts on %d partitions after Join's context ended, want 8", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	if sum := summarize(groupLog(t, js, "lifelong"), "w0"); sum.closing != 1 || sum.removed != 0 || sum.verdicts != 0 {
		t.Fatalf("log after Close: %+v, want one close and no expiry", sum)
	}
	if err := m.Close(ctx); !errors.Is(err, parti.ErrStopped) {
		t.Fatalf("second close: %v, want ErrStopped", err)
	}
	if err := m.Leave(ctx); !errors.Is(err, parti.ErrStopped) {
		t.Fatalf("leave after close: %v, want ErrStopped", err)
	}
}

// Issue 11, items 1 and 3: Close appends its close only after every Revoked
// call returned, and while a Revoked call blocks the member still
// heartbeats. When Close's context ends first, the member stops without
// appending anything (its partitions wait for the expiry) and Close says it
// was cut short. A Close with a context that had already ended does the
// same at once.
func TestCloseWaitsForRevokedAndIsBoundedByItsContext(t *testing.T) {
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	f := newFleet(t, js, "closewait", 4)
	f.base.ExpectedMembers = 1
	stopAll(t, f)
	gate := make(chan struct{})
	entered := make(chan struct{}, 16)
	cfg := f.base
	cfg.ID = "w0"
	cfg.Handler = parti.HandlerFuncs{OnRevoked: func(parti.Assignment, parti.RevokeReason) {
		entered <- struct{}{}
		<-gate
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m, err := parti.Join(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	if err := m.WaitStable(ctx); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- m.Close(ctx) }()
	<-entered
	// While Revoked blocks, heartbeats go on (a lease renewed after it was
	// entered) and no close is appended.
	at := clock.Boot().Now()
	waitFor(t, 10*f.base.Timings.Expiry, "a heartbeat acked while Revoked blocks", func() bool {
		return testhooks.LeaseDeadline(m) > at+f.base.Timings.Lease
	})
	if sum := summarize(groupLog(t, js, "closewait"), "w0"); sum.closing != 0 {
		t.Fatalf("the close was appended while a Revoked call had not returned: %+v", sum)
	}
	close(gate)
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	if sum := summarize(groupLog(t, js, "closewait"), "w0"); sum.closing != 1 {
		t.Fatalf("log after Close: %+v, want one close", sum)
	}

	// Cut short: a Revoked call that never returns in time (in a group of
	// its own: w0's partitions wait for its restart).
	gate2 := make(chan struct{})
	defer close(gate2)
	cfg.Group, cfg.ID = "closeshort", "w1"
	cfg.Handler = parti.HandlerFuncs{OnRevoked: func(parti.Assignment, parti.RevokeReason) { <-gate2 }}
	m1, err := parti.Join(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m1.Stop()
	if err := m1.WaitStable(ctx); err != nil {
		t.Fatal(err)
	}
	if len(m1.Assigned()) == 0 {
		t.Fatal("w1 owns nothing: no Revoked call to wait for")
	}
	short, scancel := context.WithTimeout(ctx, 3*f.base.Timings.Heartbeat)
	defer scancel()
	err = m1.Close(short)
	if !errors.Is(err, parti.ErrCutShort) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("close cut short: %v, want ErrCutShort and DeadlineExceeded", err)
	}
	select {
	case <-m1.Done():
	default:
		t.Fatal("the member still runs after Close was cut short")
	}
	if sum := summarize(groupLog(t, js, "closeshort"), "w1"); sum.closing != 0 {
		t.Fatalf("a close cut short appended its close: %+v", sum)
	}

	// A context that had already ended: nothing is appended.
	cfg.Group, cfg.ID = "closeended", "w2"
	cfg.Handler = nil
	m2, err := parti.Join(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Stop()
	done, dcancel := context.WithCancel(ctx)
	dcancel()
	if err := m2.Close(done); !errors.Is(err, parti.ErrCutShort) || !errors.Is(err, context.Canceled) {
		t.Fatalf("close with an ended context: %v, want ErrCutShort and Canceled", err)
	}
	if err := m2.Leave(ctx); !errors.Is(err, parti.ErrStopped) {
		t.Fatalf("leave after a cut-short close: %v, want ErrStopped", err)
	}
	if sum := summarize(groupLog(t, js, "closeended"), "w2"); sum.closing != 0 || sum.left != 0 {
		t.Fatalf("an ended context appended something: %+v", sum)
	}
}

// Join's context still bounds joining: a claim of an ID a live member holds
// waits, and ends with ErrNotGranted when the context ends; the holder is
// unaffected.
func TestJoinContextEndsAWaitingClaim(t *testing.T) {
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	f := newFleet(t, js, "claimwait", 4)
	f.base.ExpectedMembers = 1
	holder := f.join(context.Background(), "w0")
	f.waitSettled(30 * time.Second)
	cfg := f.base
	cfg.ID = "w0"
	ctx, cancel := context.WithTimeout(context.Background(), f.base.Timings.Heartbeat)
	defer cancel()
	m, err := parti.Join(ctx, js, cfg)
	if !errors.Is(err, parti.ErrNotGranted) || !errors.Is(err, context.DeadlineExceeded) {
		if m != nil {
			m.Stop()
		}
		t.Fatalf("join of a held ID: %v, want ErrNotGranted and DeadlineExceeded", err)
	}
	select {
	case <-holder.Done():
		t.Fatalf("the holder stopped: %v", holder.Err())
	default:
	}
}
