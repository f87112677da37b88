package liveness

import (
	"testing"
	"time"
)

func TestHeartbeaterAcked(t *testing.T) {
	h := NewHeartbeater("n1")
	if h.Prev() != 0 || h.Nonce() != "n1" || h.Stopped() {
		t.Fatalf("new heartbeater: prev %d nonce %q stopped %v", h.Prev(), h.Nonce(), h.Stopped())
	}
	for _, tc := range []struct{ ack, want uint64 }{
		{5, 5}, {9, 9}, {9, 9}, {7, 9}, {0, 9}, {12, 12},
	} {
		h.Acked(tc.ack)
		if h.Prev() != tc.want {
			t.Fatalf("after Acked(%d): Prev() = %d, want %d", tc.ack, h.Prev(), tc.want)
		}
	}
}

func TestHeartbeaterResolve(t *testing.T) {
	tests := []struct {
		name      string
		prev      uint64
		last      LastMessage
		want      Outcome
		wantPrev  uint64
		wantStop  bool
		stopAfter bool
	}{
		{
			name: "verdict naming nobody (an older driver): expired",
			prev: 10, last: LastMessage{Seq: 11, IsVerdict: true},
			want: Outcome{Kind: Expired, Seq: 11}, wantPrev: 10, wantStop: true,
		},
		{
			name: "verdict even with our nonce: expired",
			prev: 10, last: LastMessage{Seq: 11, IsVerdict: true, Nonce: "mine"},
			want: Outcome{Kind: Expired, Seq: 11}, wantPrev: 10, wantStop: true,
		},
		{
			name: "own heartbeat landed although the ack was lost: adopt",
			prev: 10, last: LastMessage{Seq: 11, Nonce: "mine"},
			want: Outcome{Kind: Adopt, Seq: 11}, wantPrev: 11,
		},
		{
			name: "own heartbeat below prev (the stream lost writes): adopt it anyway",
			prev: 10, last: LastMessage{Seq: 8, Nonce: "mine"},
			want: Outcome{Kind: Adopt, Seq: 8}, wantPrev: 8,
		},
		{
			name: "empty subject: TTL ran out during an outage",
			prev: 10, last: LastMessage{Empty: true, Seq: 99, IsVerdict: true},
			want: Outcome{Kind: FenceZero}, wantPrev: 0,
		},
		{
			// Issue 12, item 6: a dead incarnation's (or any other
			// process's) heartbeat copied onto this subject used to be a
			// conflict that stopped the live member.
			name: "someone else's heartbeat: junk, adopt",
			prev: 10, last: LastMessage{Seq: 11, Nonce: "theirs", Fenced: true},
			want: Outcome{Kind: Adopt, Seq: 11, Junk: true}, wantPrev: 11,
		},
		{
			// Issue 12, item 1: a well-formed event of another type.
			name: "unrecognised message without nonce: junk, adopt",
			prev: 10, last: LastMessage{Seq: 11},
			want: Outcome{Kind: Adopt, Seq: 11, Junk: true}, wantPrev: 11,
		},
		{
			// Issue 12, item 5: an old verdict against another
			// incarnation, copied onto this subject, used to stop the
			// member although no verdict against it exists.
			name: "verdict naming another incarnation of this member: junk, adopt",
			prev: 10, last: LastMessage{Seq: 11, IsVerdict: true, VerdictMember: "w-3", VerdictIncarnation: 1},
			want: Outcome{Kind: Adopt, Seq: 11, Junk: true}, wantPrev: 11,
		},
		{
			name: "verdict naming another member: junk, adopt",
			prev: 10, last: LastMessage{Seq: 11, IsVerdict: true, VerdictMember: "w-1", VerdictIncarnation: 3},
			want: Outcome{Kind: Adopt, Seq: 11, Junk: true}, wantPrev: 11,
		},
		{
			name: "verdict naming this incarnation: expired",
			prev: 10, last: LastMessage{Seq: 11, IsVerdict: true, VerdictMember: "w-3", VerdictIncarnation: 3},
			want: Outcome{Kind: Expired, Seq: 11}, wantPrev: 10, wantStop: true,
		},
		{
			// Issue 12, item 8: an old heartbeat of this very
			// incarnation, published again raw: adopted like a lost ack.
			name: "own old heartbeat without its fence header: adopt",
			prev: 10, last: LastMessage{Seq: 11, Nonce: "mine"},
			want: Outcome{Kind: Adopt, Seq: 11}, wantPrev: 11,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHeartbeater("mine")
			h.Bind("w-3", 3)
			h.Acked(tc.prev)
			got := h.Resolve(tc.last)
			if got != tc.want {
				t.Fatalf("Resolve(%+v) = %v, want %v", tc.last, got, tc.want)
			}
			if got.Stop() != tc.wantStop || h.Stopped() != tc.wantStop {
				t.Fatalf("Stop() = %v, Stopped() = %v, want %v", got.Stop(), h.Stopped(), tc.wantStop)
			}
			if h.Prev() != tc.wantPrev {
				t.Fatalf("Prev() = %d, want %d", h.Prev(), tc.wantPrev)
			}
		})
	}
}

func TestHeartbeaterStoppedIsFinal(t *testing.T) {
	h := NewHeartbeater("mine")
	h.Acked(3)
	if out := h.Resolve(LastMessage{Seq: 4, IsVerdict: true}); out.Kind != Expired {
		t.Fatalf("got %v", out)
	}
	h.Acked(9)
	if out := h.Resolve(LastMessage{Seq: 4, Nonce: "mine"}); out.Kind != Adopt {
		t.Fatalf("classification after stop: got %v", out)
	}
	h.Resolve(LastMessage{Empty: true})
	if !h.Stopped() || h.Prev() != 3 {
		t.Fatalf("after stop: Stopped %v Prev %d, want true 3", h.Stopped(), h.Prev())
	}
}

func TestNewHeartbeaterEmptyNonce(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic on empty nonce")
		}
	}()
	NewHeartbeater("")
}

func TestOutcomeString(t *testing.T) {
	for _, tc := range []struct {
		o    Outcome
		want string
	}{
		{Outcome{Kind: Expired, Seq: 4}, "expired(4)"},
		{Outcome{Kind: Adopt, Seq: 42}, "adopt(42)"},
		{Outcome{Kind: FenceZero}, "fence-zero"},
		{Outcome{Kind: 0}, "OutcomeKind(0)(0)"},
	} {
		if got := tc.o.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.o, got, tc.want)
		}
	}
}

func TestMayHeartbeat(t *testing.T) {
	const expiry = 6 * s
	tests := []struct {
		name           string
		applied, known uint64
		knownAt, now   time.Duration
		want           bool
	}{
		{"caught up", 10, 10, 0, 100 * s, true},
		{"ahead of what is known", 11, 10, 0, 100 * s, true},
		{"behind, learned just now", 9, 10, 50 * s, 50 * s, true},
		{"behind, learned just under the expiry ago", 9, 10, 50 * s, 56*s - 1, true},
		{"behind, learned exactly the expiry ago", 9, 10, 50 * s, 56 * s, false},
		{"behind for long", 9, 10, 50 * s, 80 * s, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := MayHeartbeat(tc.applied, tc.known, tc.knownAt, tc.now, expiry); got != tc.want {
				t.Fatalf("MayHeartbeat(%d, %d, %v, %v, %v) = %v, want %v",
					tc.applied, tc.known, tc.knownAt, tc.now, expiry, got, tc.want)
			}
		})
	}
}

func TestCatchUp(t *testing.T) {
	const expiry = 6 * s
	var c CatchUp
	if !c.MayHeartbeat(0, expiry) {
		t.Fatal("nothing known: may heartbeat")
	}
	c.Learned(10, 1*s)
	c.Learned(10, 2*s) // known already: keeps 1s
	c.Learned(20, 3*s)
	if seq, since, ok := c.Behind(); !ok || seq != 10 || since != 1*s {
		t.Fatalf("Behind() = %d, %v, %v", seq, since, ok)
	}
	if !c.MayHeartbeat(7*s-1, expiry) || c.MayHeartbeat(7*s, expiry) {
		t.Fatal("seq 10 known since 1s: may heartbeat until 7s, exclusive")
	}
	c.Applied(10)
	if seq, since, _ := c.Behind(); seq != 20 || since != 3*s {
		t.Fatalf("after Applied(10): Behind() = %d, %v", seq, since)
	}
	if !c.MayHeartbeat(8*s, expiry) || c.MayHeartbeat(9*s, expiry) {
		t.Fatal("seq 20 known since 3s: may heartbeat until 9s")
	}
	// A fold that lags steadily behind a busy log stops: it learns a newer
	// sequence every 100ms and applies each 7s after learning it.
	var lag CatchUp
	stopped := false
	for now := time.Duration(0); now < 30*s; now += 100 * ms {
		lag.Learned(uint64(now/(100*ms))+1, now)
		if now >= 7*s {
			lag.Applied(uint64((now-7*s)/(100*ms)) + 1)
		}
		if !lag.MayHeartbeat(now, expiry) {
			stopped = true
		}
	}
	if !stopped {
		t.Fatal("a fold lagging 7s behind never stopped heartbeating")
	}
	c.Applied(25)
	c.Learned(22, 10*s) // already applied
	if _, _, ok := c.Behind(); ok || c.AppliedSeq() != 25 {
		t.Fatalf("caught up: Behind ok %v, AppliedSeq %d", ok, c.AppliedSeq())
	}
}

func TestCatchUpBounded(t *testing.T) {
	const expiry = 6 * s
	var c CatchUp
	for i := range 10 * maxCatchUpMarks {
		c.Learned(uint64(i+1), time.Duration(i)*ms)
	}
	if len(c.marks) > maxCatchUpMarks {
		t.Fatalf("%d marks kept, bound %d", len(c.marks), maxCatchUpMarks)
	}
	// Merging is conservative: the newest sequence is taken as learned when
	// the last kept mark was, never later.
	c.Applied(uint64(maxCatchUpMarks - 1))
	seq, since, ok := c.Behind()
	if !ok || seq != uint64(10*maxCatchUpMarks) || since > time.Duration(maxCatchUpMarks-1)*ms {
		t.Fatalf("Behind() = %d, %v, %v", seq, since, ok)
	}
	if c.MayHeartbeat(since+expiry, expiry) {
		t.Fatal("may heartbeat an expiry after the merged mark")
	}
}

func TestResolveSkipsGarbage(t *testing.T) {
	h := NewHeartbeater("mine")
	h.Acked(5)
	out := h.Resolve(LastMessage{Seq: 9, Garbage: true})
	if out.Kind != Adopt || !out.Junk || out.Stop() || h.Prev() != 9 || h.Stopped() {
		t.Fatalf("garbage: outcome %v, prev %d, stopped %v; want adopt 9", out, h.Prev(), h.Stopped())
	}
}
