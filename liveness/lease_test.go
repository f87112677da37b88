package liveness

import (
	"testing"
	"time"
)

func TestLease(t *testing.T) {
	type step struct {
		op    string // "ack", "revoke", "check"
		at    time.Duration
		valid bool
		dl    time.Duration
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"never acked is never valid", []step{
			{op: "check", at: 0, valid: false, dl: 0},
			{op: "check", at: 10 * s, valid: false, dl: 0},
		}},
		{"valid until sentAt + length, exclusive", []step{
			{op: "ack", at: 1 * s},
			{op: "check", at: 1 * s, valid: true, dl: 5 * s},
			{op: "check", at: 5*s - 1, valid: true, dl: 5 * s},
			{op: "check", at: 5 * s, valid: false, dl: 5 * s},
		}},
		{"each ack extends from its send", []step{
			{op: "ack", at: 0},
			{op: "ack", at: 2 * s},
			{op: "check", at: 5 * s, valid: true, dl: 6 * s},
			{op: "check", at: 6 * s, valid: false, dl: 6 * s},
		}},
		{"an out-of-order ack never shortens", []step{
			{op: "ack", at: 4 * s},
			{op: "ack", at: 2 * s},
			{op: "check", at: 7 * s, valid: true, dl: 8 * s},
		}},
		{"revoke is final: late acks do not revive", []step{
			{op: "ack", at: 0},
			{op: "revoke"},
			{op: "check", at: 1 * s, valid: false, dl: 0},
			{op: "ack", at: 2 * s},
			{op: "check", at: 3 * s, valid: false, dl: 0},
		}},
		{"negative readings work", []step{
			{op: "ack", at: -10 * s},
			{op: "check", at: -7 * s, valid: true, dl: -6 * s},
			{op: "check", at: -6 * s, valid: false, dl: -6 * s},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLease(4 * s)
			for i, st := range tc.steps {
				switch st.op {
				case "ack":
					l.Acked(st.at)
				case "revoke":
					l.Revoke()
				case "check":
					if got := l.Valid(st.at); got != st.valid {
						t.Fatalf("step %d: Valid(%v) = %v, want %v", i, st.at, got, st.valid)
					}
					if got := l.Deadline(); got != st.dl {
						t.Fatalf("step %d: Deadline() = %v, want %v", i, got, st.dl)
					}
				}
			}
		})
	}
}

func TestLeaseAccessors(t *testing.T) {
	l := NewLease(4 * s)
	if l.Length() != 4*s || l.Revoked() {
		t.Fatalf("Length %v Revoked %v", l.Length(), l.Revoked())
	}
	l.Revoke()
	if !l.Revoked() {
		t.Fatal("not revoked")
	}
	var zero Lease
	zero.Acked(0)
	if zero.Valid(0) {
		t.Fatal("zero-length lease is valid")
	}
}

// TestLeaseEndsBeforeExpiry checks DESIGN rule 4 with the production
// profile: a member that last heartbeated successfully at sentAt has stopped
// acting at least Margin before a judge that saw that heartbeat can expire it.
func TestLeaseEndsBeforeExpiry(t *testing.T) {
	for _, p := range []Timings{Production(), Fast(), Test()} {
		l := NewLease(p.Lease)
		j, err := NewJudge(p.JudgeConfig())
		if err != nil {
			t.Fatal(err)
		}
		// Both clocks read the same here; the judge sees the heartbeat no
		// earlier than it was sent.
		const sent = 100 * s
		l.Acked(sent)
		for at := time.Duration(0); at <= sent; at += p.Heartbeat {
			j.OwnAck(at, at)
		}
		j.Watch("m", 1, 0)
		j.ObserveVictim(1, sent)
		for now := sent; now < sent+2*p.Expiry; now += 10 * ms {
			j.OwnAck(now, now) // the judge is healthy throughout
			if d, _, _ := j.Due(now); d && l.Valid(now-p.Margin) {
				t.Fatalf("%+v: verdict due at %v while the lease was valid at %v", p, now, now-p.Margin)
			}
		}
	}
}
