package sim

import (
	"strconv"
	"time"

	"github.com/parti-io/parti/liveness"
	"github.com/parti-io/parti/rawmember"
)

// JudgeClock is the clock a judge dates its victim's heartbeats by. Only
// [JudgeOwnClock], the zero value, is correct (DESIGN rule 2: the judge's own
// reading when it saw them); the others are DELIBERATELY BROKEN and exist so
// that the simulator can show it catches a verdict judged on the server's or
// on the victim's clock.
//
// The production judge knows nothing of them: it counts a victim heartbeat
// as seen at the reading its driver passes to
// [rawmember.Member.VictimRecord]. The simulator's driver breaks the judge by
// passing, instead of its own reading, the foreign time of the heartbeat
// mapped onto its own clock with the offset it measured at the first
// heartbeat of the victim its judge counted since the watch began (its own
// reading then, minus the foreign time then). The no-gap condition on the
// judge's own heartbeats still holds. Such a judge agrees with the correct
// one as long as the foreign clock keeps in step with the judge's. It goes
// wrong when the server's clock steps (a step back makes a heartbeating
// victim look silent: a healthy member is expired; a step forward expires a
// dead one late) or when the victim's clock runs slower than the judge's (its
// heartbeats look older and older until a healthy member is expired).
type JudgeClock uint8

const (
	// JudgeOwnClock dates each heartbeat by the judge's own reading when it
	// saw it: the only correct choice.
	JudgeOwnClock JudgeClock = iota
	// JudgeServerClock (broken) dates each heartbeat by the server's
	// timestamp of it.
	JudgeServerClock
	// JudgeVictimClock (broken) dates each heartbeat by the victim's own
	// reading when it sent it (no heartbeat body carries it: the simulator
	// models it as a header a broken implementation would add).
	JudgeVictimClock
)

// String returns the clock's name.
func (c JudgeClock) String() string {
	switch c {
	case JudgeOwnClock:
		return "judge's own clock"
	case JudgeServerClock:
		return "server's clock (broken)"
	case JudgeVictimClock:
		return "victim's clock (broken)"
	}
	return "JudgeClock(" + strconv.Itoa(int(c)) + ")"
}

// victimDating is what a driver dating heartbeats by a foreign clock keeps
// of its member's watch: the watched incarnation and its nonce (as the
// member's fold named them when it began the watch), and the mapping of the
// foreign clock onto the member's, measured at the first heartbeat counted.
type victimDating struct {
	member string
	inc    uint64
	nonce  string

	set    bool
	now    time.Duration // the member's reading at the first heartbeat counted
	server time.Time     // ... the server's timestamp of it
	sent   time.Duration // ... the victim's reading when it sent it
}

// watched records that p's member began watching incarnation inc of member
// (rawmember.ActWatch): a new watch measures its mapping afresh. The member
// was just stepped with p.st, the fold it took the victim's nonce from.
func (p *proc) watched(member string, inc uint64) {
	p.dating = victimDating{member: member, inc: inc}
	if mb := p.st.Member(member); mb != nil && mb.Incarnation == inc {
		p.dating.nonce = mb.Nonce
	}
}

// unwatched records that p's member stopped watching (rawmember.ActUnwatch).
func (p *proc) unwatched() { p.dating = victimDating{} }

// victimNow returns the reading p's driver reports the watched subject's
// message m (of incarnation inc of member, described by desc) at: now, p's
// own reading, unless the judge is broken on purpose (Broken.JudgeClock) and
// m is a heartbeat its judge counts, which it then dates by the foreign
// clock. Which heartbeats count is rawmember.Member.VictimRecord's rule: a
// fenced heartbeat carrying the watched incarnation's nonce, on a member not
// stopped. Only those measure the mapping, as they did when the broken clock
// was a rule of the judge itself.
func (w *world) victimNow(p *proc, member string, inc uint64, m *hbMessage, desc liveness.LastMessage, now time.Duration) time.Duration {
	clock := w.opt.Broken.JudgeClock
	if clock == JudgeOwnClock {
		return now
	}
	d := &p.dating
	counted := p.m.Stopped() == rawmember.NotStopped && member == d.member && inc == d.inc &&
		!desc.Empty && desc.Seq != 0 && m.verdict == nil && !desc.Garbage && !desc.IsVerdict &&
		desc.Fenced && d.nonce != "" && desc.Nonce == d.nonce
	if !counted {
		return now
	}
	switch clock {
	case JudgeServerClock:
		server := stamp(m.ts)
		if !d.set {
			d.set, d.now, d.server = true, now, server
		}
		return d.now + server.Sub(d.server)
	case JudgeVictimClock:
		if m.hb == nil || m.raw {
			return now // no send time travels with it
		}
		if !d.set {
			d.set, d.now, d.sent = true, now, m.sent
		}
		return d.now + (m.sent - d.sent)
	}
	return now
}
