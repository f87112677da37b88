package liveness

import (
	"testing"
	"time"
)

// DueAt names the first reading at which Due reports a verdict due, so that
// a driver stepping on a timer can wake then (issue 12: an expiry took up to
// one timer period, a quarter heartbeat, longer than the expiry).
func TestDueAtIsWhenDueTurns(t *testing.T) {
	s := time.Second
	j, err := NewJudge(JudgeConfig{Expiry: 6 * s, MaxGap: 3 * s})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := j.DueAt(); ok {
		t.Fatal("DueAt with no victim")
	}
	j.Watch("v", 1, 0)
	if _, ok := j.DueAt(); ok {
		t.Fatal("DueAt before the judge's own first ack")
	}
	j.OwnAck(0, s/10)
	j.ObserveVictim(10, s)
	for at := 2 * s; at <= 8*s; at += s {
		j.OwnAck(at, at)
	}
	at, ok := j.DueAt()
	if !ok || at != 7*s+1 {
		t.Fatalf("DueAt = %v %v, want 7s+1ns (victim seen at 1 s, expiry 6 s)", at, ok)
	}
	if due, _, _ := j.Due(at - 1); due {
		t.Fatal("due before DueAt")
	}
	if due, _, _ := j.Due(at); !due {
		t.Fatal("not due at DueAt")
	}
	j.OwnFailure(8 * s)
	if _, ok := j.DueAt(); ok {
		t.Fatal("DueAt after the judge's own failure (no count runs)")
	}
}
