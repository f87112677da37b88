package rawmember

import (
	"testing"
	"time"
)

func TestRejoinPolicy(t *testing.T) {
	for _, c := range []struct {
		r      StopReason
		ending bool
		want   bool
	}{
		{StopRemoved, false, true},
		{StopExpired, false, true},
		{StopRemoved, true, false},
		{StopExpired, true, false},
		{StopLeft, false, false},
		{StopClosed, false, false},
		{StopNewerProtocol, false, false},
		{NotStopped, false, false},
	} {
		if got := Rejoin(c.r, c.ending); got != c.want {
			t.Errorf("Rejoin(%v, ending %v) = %v, want %v", c.r, c.ending, got, c.want)
		}
	}
}

func TestSnapshotPolicy(t *testing.T) {
	p := SnapshotPolicy{Every: 100, TTL: time.Hour}
	for _, c := range []struct {
		last, snap  uint64
		now, lastAt time.Duration
		want        bool
	}{
		{99, 0, 0, 0, false},
		{100, 0, 0, 0, true},
		{150, 100, 10 * time.Minute, 0, false},
		{150, 100, 31 * time.Minute, 0, true}, // the last snapshot's TTL is half gone
		{50, 0, 31 * time.Minute, 0, false},   // no history worth one yet
	} {
		if got := p.Due(c.last, c.snap, c.now, c.lastAt); got != c.want {
			t.Errorf("Due(%d, %d, %v, %v) = %v, want %v", c.last, c.snap, c.now, c.lastAt, got, c.want)
		}
	}
	if (SnapshotPolicy{Every: -1, TTL: time.Hour}).Due(1e9, 0, 0, 0) {
		t.Error("a negative Every still takes snapshots")
	}
}
