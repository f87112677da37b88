package rawmember

import (
	"testing"
	"time"

	"github.com/parti-io/parti/liveness"
)

// eagerJudge wraps the default judge, records what the member reports to it
// and what it was built from, and from the reading from on finds a verdict
// due whenever it has a victim: a judge with another rule than
// liveness.Judge's.
type eagerJudge struct {
	*liveness.Judge
	cfg  liveness.JudgeConfig
	acks int
	from time.Duration
}

func (j *eagerJudge) OwnAck(sentAt, ackedAt time.Duration) {
	j.acks++
	j.Judge.OwnAck(sentAt, ackedAt)
}

func (j *eagerJudge) Due(now time.Duration) (bool, time.Duration, uint64) {
	_, span, fence := j.Judge.Due(now)
	_, _, watching := j.Victim()
	return watching && now >= j.from, span, fence
}

// Config.NewJudge builds the member's judge from its timings' JudgeConfig, and
// the member follows that judge: it reports its own acknowledgements to it
// and appends a verdict when it says one is due. The same victim,
// heartbeating every 500 ms, is never expired by the default judge and is
// by one that finds every victim due after a second.
func TestConfigNewJudgeIsTheMembersJudge(t *testing.T) {
	for _, eager := range []bool{false, true} {
		r := newRig(t)
		var built []*eagerJudge
		if eager {
			r.newJudge = func(c liveness.JudgeConfig) (Judge, error) {
				j, err := liveness.NewJudge(c)
				if err != nil {
					return nil, err
				}
				built = append(built, &eagerJudge{Judge: j, cfg: c, from: 1 << 62})
				return built[len(built)-1], nil
			}
		}
		ms := r.group(4, "a", "b")
		b := ms["b"] // b judges a
		for _, j := range built {
			j.from = r.now + time.Second
		}
		got := false
		for i := 0; i < 40 && !got; i++ { // 4 s in steps of 100 ms
			got = verdictOf(r.step(b, 100*time.Millisecond))
			if i%5 == 0 {
				r.seq++
				b.VictimMessage("a", 1, r.seq, nil, r.now)
			}
		}
		if got != eager {
			t.Errorf("judge finding every victim due %v: verdict against a heartbeating victim %v, want %v", eager, got, eager)
		}
		if !eager {
			continue
		}
		if len(built) != 2 {
			t.Fatalf("NewJudge called %d times for 2 members", len(built))
		}
		for _, j := range built {
			if j.cfg != liveness.Test().JudgeConfig() {
				t.Errorf("NewJudge got %+v, want the timings' %+v", j.cfg, liveness.Test().JudgeConfig())
			}
		}
		if built[1].acks == 0 {
			t.Error("b's acknowledged heartbeats never reached its judge")
		}
	}
}
