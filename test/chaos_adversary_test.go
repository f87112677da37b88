package test

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"sync"
	"time"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/projection"
)

// chaosAdversary is a process with a member's permissions that, all through a
// chaos run, behaves as a buggy, confused or stale one would (issue 12):
// every 50–600 ms it publishes, raw (no fence), on a random member's
// heartbeat subject, one of: garbage, an envelope of an unknown type, a
// heartbeat of a newer protocol version, an event of another type, another
// process's heartbeat, a verdict naming another incarnation, a copy of the
// subject's own last heartbeat; or, on the log, a copy of an old release or
// claim. The run's checks (no overlap, no healthy member expired after a
// server fault, settling, every message handled) must hold regardless.
type chaosAdversary struct {
	r      *chaosRig
	rng    *rand.Rand
	mu     sync.Mutex
	counts map[string]int
	stop   chan struct{}
	done   chan struct{}
}

// startAdversary starts the adversary; the returned function stops it and
// returns its counts by kind.
func (r *chaosRig) startAdversary() func() map[string]int {
	a := &chaosAdversary{r: r, rng: rand.New(rand.NewSource(r.seed ^ 0x5eed)), counts: map[string]int{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go a.run()
	return func() map[string]int {
		select {
		case <-a.stop:
		default:
			close(a.stop)
		}
		<-a.done
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.counts
	}
}

func (a *chaosAdversary) run() {
	defer close(a.done)
	subj, _ := events.NewSubjects(a.r.group)
	for {
		select {
		case <-a.stop:
			return
		case <-time.After(time.Duration(50+a.rng.Intn(550)) * time.Millisecond):
		}
		ms := a.r.all()
		if len(ms) == 0 {
			continue
		}
		sort.Slice(ms, func(i, j int) bool { return ms[i].name < ms[j].name })
		m := ms[a.rng.Intn(len(ms))].c.Member()
		id, inc := m.ID(), m.Incarnation()
		if id == "" {
			continue
		}
		hb := subj.Heartbeat(id, inc)
		kind, subject, body := a.pick(hb, subj.Log(), id, inc)
		if body == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(a.r.ctx, 2*time.Second)
		_, err := a.r.admin.Publish(ctx, subject, body)
		cancel()
		if err != nil {
			continue // the stream may be down: a fault in progress
		}
		a.mu.Lock()
		a.counts[kind]++
		a.mu.Unlock()
	}
}

// pick returns what to publish where.
func (a *chaosAdversary) pick(hb, log, id string, inc uint64) (kind, subject string, body []byte) {
	enc := func(ev events.Event) []byte { return events.MustEncode(events.MaxVersion, ev) }
	switch a.rng.Intn(9) {
	case 0:
		return "garbage", hb, []byte("garbage{")
	case 1:
		return "unknown-type", hb, []byte(`{"v":1,"t":999,"e":{}}`)
	case 2:
		return "newer-version", hb, []byte(fmt.Sprintf(`{"v":%d,"t":100,"e":{"n":"x"}}`, events.MaxVersion+1))
	case 3:
		return "other-type", hb, enc(&events.MemberLeft{Member: id, Incarnation: inc})
	case 4:
		return "foreign-heartbeat", hb, enc(&events.Heartbeat{Nonce: "someone-else"})
	case 5:
		return "foreign-verdict", hb, enc(&events.ExpiryVerdict{Member: id, Incarnation: inc + 5, Judge: "adversary", JudgeInc: 1})
	case 6:
		if raw := a.lastOn(hb); raw != nil {
			return "own-heartbeat-copy", hb, raw
		}
	case 7, 8:
		// An old release or claim on the log, copied byte for byte.
		if raw := a.oldLogRecord(log); raw != nil {
			return "log-replay", log, raw
		}
	}
	return "", "", nil
}

func (a *chaosAdversary) lastOn(subject string) []byte {
	ctx, cancel := context.WithTimeout(a.r.ctx, 2*time.Second)
	defer cancel()
	st, err := a.r.admin.Stream(ctx, projection.StreamName(a.r.group))
	if err != nil {
		return nil
	}
	raw, err := st.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return nil
	}
	if _, ok := decodeEvent(raw.Data).(*events.Heartbeat); !ok {
		return nil
	}
	return raw.Data
}

// oldLogRecord returns the body of a random early release or claim of the
// log.
func (a *chaosAdversary) oldLogRecord(log string) []byte {
	ctx, cancel := context.WithTimeout(a.r.ctx, 2*time.Second)
	defer cancel()
	st, err := a.r.admin.Stream(ctx, projection.StreamName(a.r.group))
	if err != nil {
		return nil
	}
	for range 8 {
		raw, err := st.GetMsg(ctx, uint64(1+a.rng.Intn(200)))
		if err != nil || raw.Subject != log {
			continue
		}
		switch decodeEvent(raw.Data).(type) {
		case *events.PartitionsReleased, *events.MemberClaimed:
			return raw.Data
		}
	}
	return nil
}

// junkSeen sums the junk the current members counted.
func (r *chaosRig) junkSeen() uint64 {
	var n uint64
	for _, m := range r.all() {
		n += m.c.Member().JunkSeen()
	}
	return n
}
