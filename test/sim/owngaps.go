package sim

import (
	"time"

	"github.com/parti-io/parti/liveness"
	"github.com/parti-io/parti/rawmember"
)

// ownGapsJudge is a DELIBERATELY BROKEN expiry judge (Broken.JudgeIgnoresOwnGaps):
// it counts from when the victim was last seen, or from the watch, and ignores
// the judge's own heartbeats entirely. After an outage or a stream-leader
// election longer than the expiry it expires every member at once, healthy or
// not; the simulator must catch it (KindHealthyExpired).
//
// It wraps the production judge, which keeps the verdict's fence (and sees
// the own heartbeats, which this one then ignores), and replaces only when a
// verdict is due. The member renews its lease from the same acknowledgements
// whatever its judge, which is why the variant breaks the judge (through
// rawmember.Config.NewJudge) rather than the driver's inputs.
type ownGapsJudge struct {
	*liveness.Judge
	expiry time.Duration

	watching bool
	watchAt  time.Duration
	seen     bool
	seenAt   time.Duration
	hbSeq    uint64
}

// newOwnGapsJudge is the rawmember.Config.NewJudge of the broken variant.
func newOwnGapsJudge(cfg liveness.JudgeConfig) (rawmember.Judge, error) {
	j, err := liveness.NewJudge(cfg)
	if err != nil {
		return nil, err
	}
	return &ownGapsJudge{Judge: j, expiry: cfg.Expiry}, nil
}

func (j *ownGapsJudge) Watch(victimMember string, victimIncarnation uint64, now time.Duration) {
	j.Judge.Watch(victimMember, victimIncarnation, now)
	j.watching, j.watchAt, j.seen, j.seenAt, j.hbSeq = true, now, false, 0, 0
}

func (j *ownGapsJudge) Unwatch() {
	j.Judge.Unwatch()
	j.watching, j.seen = false, false
}

// ObserveVictim keeps liveness.Judge's rule for what a sighting is: none
// while nothing is watched, not sequence 0, not a sequence already seen.
func (j *ownGapsJudge) ObserveVictim(seq uint64, now time.Duration) {
	j.Judge.ObserveVictim(seq, now)
	if !j.watching || seq == 0 || (j.seen && seq <= j.hbSeq) {
		return
	}
	if !j.seen || now > j.seenAt {
		j.seenAt = now
	}
	j.seen, j.hbSeq = true, seq
}

// start is where the broken count starts.
func (j *ownGapsJudge) start() time.Duration {
	if j.seen {
		return j.seenAt
	}
	return j.watchAt
}

func (j *ownGapsJudge) DueAt() (time.Duration, bool) {
	if !j.watching {
		return 0, false
	}
	return j.start() + j.expiry + 1, true
}

func (j *ownGapsJudge) Due(now time.Duration) (bool, time.Duration, uint64) {
	if !j.watching {
		return false, 0, 0
	}
	_, _, fence := j.Judge.Due(now) // the fence, whatever the production rule says
	span := max(now-j.start(), 0)
	return span > j.expiry, span, fence
}
