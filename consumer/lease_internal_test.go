package consumer

import (
	"testing"
	"time"
)

// A lease check is reused only while both the monotonic and the wall clock
// moved forward by less than ownsReuse: a suspend (the wall clock jumps,
// the monotonic clock does not) or a wall clock set back forces a new
// check, as does the lack of any earlier valid check.
func TestLeaseReusable(t *testing.T) {
	at := time.Now()
	wall := at.UnixNano()
	half := ownsReuse / 2
	for _, c := range []struct {
		name string
		at   time.Time
		wall int64
		now  time.Time
		want bool
	}{
		{"never checked", time.Time{}, 0, at, false},
		{"same instant", at, wall, at, true},
		{"half the window later", at, wall, at.Add(half), true},
		{"the window over", at, wall, at.Add(ownsReuse), false},
		{"long after", at, wall, at.Add(time.Hour), false},
		// The monotonic reading says half a window; the wall clock says a
		// suspend of an hour happened in between.
		{"suspended", at, wall - int64(time.Hour), at.Add(half), false},
		// The wall clock was set back by a second since the check.
		{"wall clock set back", at, wall + int64(time.Second), at.Add(half), false},
		{"monotonic clock behind", at.Add(half), wall, at, false},
	} {
		if got := leaseReusable(c.at, c.wall, c.now); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}
