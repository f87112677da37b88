package test

import (
	"context"
	"testing"
	"time"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/natstest"
)

func TestPartitionSetChangeAndOperatorActions(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	f := newFleet(t, js, "ops", 40)
	coldStart(t, ctx, f, 4)

	// A new partition set: 10 dropped, 20 added, declared by the leader.
	next := append(partitions(50)[10:], "extra-1", "extra-2")
	for _, m := range f.all() {
		if err := m.SetPartitions(next, nil); err != nil {
			t.Fatal(err)
		}
	}
	f.parts = next
	f.waitSettled(30 * time.Second)
	own := f.owners()
	if len(own) != len(next) || own["p-0000"] != "" || own["extra-2"] == "" {
		t.Fatalf("after re-declaration: %d owned, p-0000 %q, extra-2 %q", len(own), own["p-0000"], own["extra-2"])
	}
	if err := f.all()[0].SetPartitions([]string{"dup", "dup"}, nil); err == nil {
		t.Fatal("a duplicate partition was accepted")
	}

	ops := f.all()[0]
	// Drain: every partition moves off w02, which stays a member.
	if err := ops.Operate(ctx, events.OperatorAction{Action: events.OpDrain, Member: "w02", By: "test"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "w02 to be drained", func() bool {
		for _, o := range f.owners() {
			if o == "w02" {
				return false
			}
		}
		return f.member("w02").Err() == nil && len(f.member("w02").Assigned()) == 0
	})
	// Pause: a new member gets nothing until resume.
	if err := ops.Operate(ctx, events.OperatorAction{Action: events.OpPause, By: "test"}); err != nil {
		t.Fatal(err)
	}
	late := f.join(ctx, "late")
	waitFor(t, 30*time.Second, "the join to be folded", func() bool { return ops.State().Member("late") != nil })
	deadline := time.Now().Add(4 * f.base.Window)
	waitFor(t, time.Minute, "several windows", func() bool { return time.Now().After(deadline) })
	if n := len(late.Assigned()); n != 0 {
		t.Fatalf("paused group gave the newcomer %d partitions", n)
	}
	if err := ops.Operate(ctx, events.OperatorAction{Action: events.OpUncordon, Member: "w02", By: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := ops.Operate(ctx, events.OperatorAction{Action: events.OpResume, By: "test"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "every member to fold the resume", func() bool {
		for _, m := range f.all() {
			s := m.State()
			if s.Paused || s.Member("w02").Draining {
				return false
			}
		}
		return true
	})
	f.waitSettled(30 * time.Second)
	if len(late.Assigned()) == 0 || len(f.member("w02").Assigned()) == 0 {
		t.Fatalf("after resume and uncordon the newcomer and w02 must own partitions again: late %d, w02 %d, owners %v", len(late.Assigned()), len(f.member("w02").Assigned()), f.owners())
	}
	// Move one partition by hand.
	var p, from string
	for pp, o := range f.owners() {
		if o != "late" {
			p, from = pp, o
			break
		}
	}
	if err := ops.Operate(ctx, events.OperatorAction{Action: events.OpMove, Partition: p, Target: "late", By: "test"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the operator's move", func() bool { return f.owners()[p] == "late" })
	t.Logf("moved %s from %s to late", p, from)
	// Unknown members and actions are refused before anything is appended.
	if err := ops.Operate(ctx, events.OperatorAction{Action: events.OpDrain, Member: "nobody"}); err == nil {
		t.Fatal("drain of an unknown member accepted")
	}
	f.checkNoOverlap()
}
