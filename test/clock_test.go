package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
	"github.com/parti-io/parti/decider"
	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/internal/clock"
	"github.com/parti-io/parti/internal/faultproxy"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/internal/testhooks"
	"github.com/parti-io/parti/replay"
)

// Issue 7, item 3: nothing in parti may depend on a member's clock being
// right, nor on the server's. These tests give members injected lease clocks
// (Config.Clock) that run fast, slow, grossly slow, stop and jump, against a
// real embedded server, and check the token store and the ownership
// intervals.

// clockLead is how far ahead of CLOCK_BOOTTIME a testClock starts. Its
// readings then stay ahead of the boot clock for the rates and durations used
// here, so the harness's recorder, which bounds an interval by the member's
// lease deadline (a reading of the member's clock) compared with boot
// readings, can only record an interval as ending later than it did: the
// overlap check stays sound, merely conservative (it bounds such a member's
// intervals by when Revoked ran).
const clockLead = time.Hour

// testClock is a member's lease clock for these tests: it runs at a chosen
// rate against CLOCK_BOOTTIME, can change rate (rate 0: a process whose
// clock stands still, as a suspended process sees it), and can jump forward
// (the suspension a boot clock counts, seen at wake-up). Readings never
// decrease.
type testClock struct {
	boot clock.Clock
	mu   sync.Mutex
	segs []clockSeg
}

// clockSeg is a stretch of a testClock: from boot reading boot on, its
// readings are reading + rate × (boot clock − boot).
type clockSeg struct {
	boot, reading time.Duration
	rate          float64
}

func newTestClock(rate float64) *testClock {
	b := clock.Boot()
	now := b.Now()
	return &testClock{boot: b, segs: []clockSeg{{boot: now, reading: now + clockLead, rate: rate}}}
}

func (s clockSeg) at(b time.Duration) time.Duration {
	return s.reading + time.Duration(float64(b-s.boot)*s.rate)
}

// Now implements parti.Clock.
func (c *testClock) Now() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.segs[len(c.segs)-1].at(c.boot.Now())
}

// SetRate changes the rate from now on.
func (c *testClock) SetRate(rate float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.boot.Now()
	c.segs = append(c.segs, clockSeg{boot: b, reading: c.segs[len(c.segs)-1].at(b), rate: rate})
}

// Jump moves the clock forward by d at once and returns the reading just
// before the jump.
func (c *testClock) Jump(d time.Duration) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.boot.Now()
	last := c.segs[len(c.segs)-1]
	before := last.at(b)
	c.segs = append(c.segs, clockSeg{boot: b, reading: before + d, rate: last.rate})
	return before
}

// ToBoot returns the first boot reading at which this clock read at least r
// (math.MaxInt64 if it never did and never will at its current rate).
func (c *testClock) ToBoot(r time.Duration) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.segs {
		if r <= s.reading {
			return s.boot // within a jump, or before the first segment
		}
		if s.rate == 0 {
			continue
		}
		if i+1 < len(c.segs) && r >= s.at(c.segs[i+1].boot) {
			continue
		}
		return s.boot + time.Duration(math.Ceil(float64(r-s.reading)/s.rate))
	}
	return math.MaxInt64
}

// joinWithClocks joins len(clocks) members w00, w01, ... one after the other
// (so join order, and with it the judging ring, is their index order: wN
// judges wN-1, w00 the last), each with its clock (nil: the default boot
// clock), and waits until the fleet settled.
func joinWithClocks(t *testing.T, ctx context.Context, f *fleet, clocks []*testClock) {
	t.Helper()
	f.base.ExpectedMembers = len(clocks)
	for i, c := range clocks {
		f.base.Clock = nil
		if c != nil {
			f.base.Clock = c
		}
		f.join(ctx, fmt.Sprintf("w%02d", i))
	}
	f.base.Clock, f.base.ExpectedMembers = nil, 0
	f.waitSettled(60 * time.Second)
}

// stopAll stops every member of f still running when the test ends, so that
// none outlives its server.
func stopAll(t *testing.T, f *fleet) {
	t.Cleanup(func() {
		for _, m := range f.all() {
			m.Stop()
		}
	})
}

// judgeOf returns the member that judges id in m's fold.
func judgeOf(m *parti.Member, id string) string {
	s := m.State()
	for _, lm := range s.LiveMembers() {
		if v, ok := s.Victim(lm.ID, lm.Incarnation); ok && v.ID == id {
			return lm.ID
		}
	}
	return ""
}

// incarnations returns every member's current incarnation, by ID.
func incarnations(f *fleet) map[string]uint64 {
	out := map[string]uint64{}
	for _, m := range f.all() {
		out[m.ID()] = m.Incarnation()
	}
	return out
}

// ownedBy returns the partitions id owns in m's fold, with their tokens.
func ownedBy(m *parti.Member, id string) map[string]events.Token {
	s := m.State()
	out := map[string]events.Token{}
	for i, o := range s.Owners {
		if o.Owner == id {
			out[s.Partitions[i]] = o.FencingToken()
		}
	}
	return out
}

// reowned reports whether every partition in parts has an owner other than
// id in m's fold.
func reowned(m *parti.Member, id string, parts map[string]events.Token) bool {
	s := m.State()
	for p := range parts {
		i, ok := s.PartitionIndex(p)
		if !ok {
			return false
		}
		if o := s.Owners[i].Owner; o == "" || o == id {
			return false
		}
	}
	return true
}

// takeoverAt returns the earliest sign (boot clock) that one of parts was
// taken over from old: the start of an ownership interval recorded with a
// newer token, or the store's first accepted write with one.
func takeoverAt(r *recorder, st *tokenStore, old map[string]events.Token) time.Duration {
	first := time.Duration(math.MaxInt64)
	r.mu.Lock()
	for p, tok := range old {
		for _, iv := range r.ivs[p] {
			var nt events.Token
			if _, err := fmt.Sscanf(iv.token, "%d/%d", &nt.Seq, &nt.Incarnation); err == nil && tok.Less(nt) && iv.start < first {
				first = iv.start
			}
		}
	}
	r.mu.Unlock()
	for _, w := range st.writes(func(w storeWrite) bool { tok, ok := old[w.Part]; return ok && w.OK && tok.Less(w.Token) }) {
		first = min(first, w.At)
	}
	return first
}

// ---- the token-checking store -------------------------------------------

// storeWrite is one write attempt the store saw.
type storeWrite struct {
	Part   string        `json:"p"`
	Writer string        `json:"w"`
	Token  events.Token  `json:"tok"`
	At     time.Duration `json:"-"` // boot clock, when the store saw it
	OK     bool          `json:"-"`
	High   events.Token  `json:"-"` // the highest token accepted before it
}

// tokenStore is the application's storage of these tests: it accepts a
// write for a partition only if its fencing token is at least the highest it
// has accepted for that partition, and keeps every attempt.
type tokenStore struct {
	clk  clock.Clock
	mu   sync.Mutex
	high map[string]events.Token
	log  []storeWrite
}

func newTokenStore() *tokenStore {
	return &tokenStore{clk: clock.Boot(), high: map[string]events.Token{}}
}

// write attempts a write and reports whether it was accepted.
func (s *tokenStore) write(part, writer string, tok events.Token) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, seen := s.high[part]
	ok := !seen || !tok.Less(h)
	if ok {
		s.high[part] = tok
	}
	s.log = append(s.log, storeWrite{Part: part, Writer: writer, Token: tok, At: s.clk.Now(), OK: ok, High: h})
	return ok
}

// writes returns the attempts for which keep holds.
func (s *tokenStore) writes(keep func(w storeWrite) bool) []storeWrite {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []storeWrite
	for _, w := range s.log {
		if keep(w) {
			out = append(out, w)
		}
	}
	return out
}

// newerAccepted reports whether, for every partition in old, the store
// accepted a write with a token newer than old's.
func (s *tokenStore) newerAccepted(old map[string]events.Token) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, tok := range old {
		if h, ok := s.high[p]; !ok || !tok.Less(h) {
			return false
		}
	}
	return true
}

// check fails the test if the store ever accepted a write with an older
// token after a newer one (replaying its log from scratch, independently of
// how write decided).
func (s *tokenStore) check(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	high := map[string]events.Token{}
	for _, w := range s.log {
		if !w.OK {
			continue
		}
		if h, ok := high[w.Part]; ok && w.Token.Less(h) {
			t.Errorf("partition %s: the store accepted %s from %s after %s", w.Part, w.Token, w.Writer, h)
		}
		high[w.Part] = w.Token
	}
}

// serve answers write requests on subject: the body is a storeWrite, the
// reply "ok" or "stale".
func (s *tokenStore) serve(t *testing.T, nc *nats.Conn, subject string) {
	t.Helper()
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		var w storeWrite
		if err := json.Unmarshal(m.Data, &w); err != nil {
			_ = m.Respond([]byte("bad"))
			return
		}
		reply := "stale"
		if s.write(w.Part, w.Writer, w.Token) {
			reply = "ok"
		}
		_ = m.Respond([]byte(reply))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
}

// writeOwned is the application of f's members: every 10 ms, each member
// whose application runs (skip(id) false) writes every partition it may act
// on (Assigned) to the store with its token, as "ID#incarnation". It stops
// when the test ends.
func writeOwned(t *testing.T, f *fleet, st *tokenStore, skip func(id string) bool) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond) // the application's pace, not synchronisation
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for _, m := range f.all() {
				if skip != nil && skip(m.ID()) {
					continue
				}
				name := fmt.Sprintf("%s#%d", m.ID(), m.Incarnation())
				for _, a := range m.Assigned() {
					st.write(a.Partition, name, a.Token)
				}
			}
		}
	}()
}

// ---- the tests ----------------------------------------------------------

// Members whose lease clocks run 1 % fast and 1 % slow (the promise): when
// the slow one is cut off, its fast judge expires it no earlier than the
// expiry after its last acknowledged heartbeat (in real time), its lease
// ends within lease/0.99 of the cut and before anyone takes its partitions,
// no healthy member is expired, no ownership intervals overlap and the store
// rejects nothing. The fold of the same
// history with server timestamps that step backwards is identical.
func TestClockSkewWithinPromise(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := natstest.Server(t)
	proxy, err := faultproxy.Start(s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	_, direct := natstest.Connect(t, s.ClientURL())
	_, cut := natstest.Connect(t, proxy.URL())
	const victim = "w01"
	f := newFleet(t, direct, "skew", 32)
	f.jsFor = func(id string) jetstream.JetStream {
		if id == victim {
			return cut
		}
		return direct
	}
	stopAll(t, f)
	const fast, slow = 1.01, 0.99
	clocks := []*testClock{newTestClock(fast), newTestClock(slow), newTestClock(fast), newTestClock(slow)}
	vclk := clocks[1]
	st := newTokenStore()
	joinWithClocks(t, ctx, f, clocks)
	writeOwned(t, f, st, nil)
	tm := f.base.Timings
	if j := judgeOf(f.member("w00"), victim); j != "w02" {
		t.Fatalf("the slow victim %s is judged by %q, want the fast w02", victim, j)
	}
	incs := incarnations(f)

	// Cut the slow victim off.
	v := f.member(victim)
	mine := ownedBy(f.member("w00"), victim)
	if len(mine) == 0 {
		t.Fatal("the victim owns nothing")
	}
	boot := clock.Boot()
	proxy.SetMode(faultproxy.Blackhole)
	cutAt := boot.Now()
	waitFor(t, 30*time.Second, "the victim's partitions to be re-owned", func() bool {
		return reowned(f.member("w00"), victim, mine) && st.newerAccepted(mine)
	})
	if n := len(v.Assigned()); n != 0 {
		t.Fatalf("the cut-off member still acts on %d partitions after they were handed on", n)
	}
	takeover := takeoverAt(f.rec, st, mine)
	deadline := vclk.ToBoot(testhooks.LeaseDeadline(v)) // final: nothing reaches it any more
	lastSend := vclk.ToBoot(testhooks.LeaseDeadline(v) - tm.Lease)
	t.Logf("cut at 0; victim's lease ended at %v (its last acked heartbeat was sent at %v); first new owner at %v; expiry %v, lease %v",
		deadline-cutAt, lastSend-cutAt, takeover-cutAt, tm.Expiry, tm.Lease)
	if bound := cutAt + time.Duration(float64(tm.Lease)/slow); deadline > bound {
		t.Errorf("the slow victim's lease outlived its bound: it ends %v after the cut, more than lease/%.2f = %v",
			deadline-cutAt, slow, bound-cutAt)
	}
	if deadline >= takeover {
		t.Errorf("the victim's lease ended %v after its partitions were taken over", deadline-takeover)
	}
	if early := lastSend + time.Duration(float64(tm.Expiry)/fast); takeover < early {
		t.Errorf("the victim was expired early: taken over %v after its last acknowledged heartbeat, less than expiry/%.2f = %v",
			takeover-lastSend, fast, early-lastSend)
	}
	for id, inc := range incarnations(f) {
		if id != victim && inc != incs[id] {
			t.Errorf("healthy member %s was expired: incarnation %d → %d", id, incs[id], inc)
		}
	}

	proxy.SetMode(faultproxy.Pass)
	proxy.Reset()
	waitFor(t, 60*time.Second, "the victim to rejoin as a new incarnation", func() bool { return v.Incarnation() > incs[victim] })
	f.waitSettled(60 * time.Second)
	f.checkNoOverlap()
	if bad := st.writes(func(w storeWrite) bool { return !w.OK }); len(bad) != 0 {
		t.Errorf("the store rejected %d writes within the promise, first %+v", len(bad), bad[0])
	}
	st.check(t)
	if n := len(st.writes(func(w storeWrite) bool { return w.OK })); n == 0 {
		t.Fatal("nothing was written")
	}

	t.Run("server-time", func(t *testing.T) { checkFoldIgnoresServerTime(t, ctx, direct, f) })
}

// checkFoldIgnoresServerTime reads the group's log back from the real
// stream, gives its records server timestamps that step backwards (every
// one, then at random, by up to days), and checks that the fold (the one
// every member runs, and replay's) reaches identical states after every
// record, identical to the live members' fold, and that the audit stays
// clean while it reports the steps.
func checkFoldIgnoresServerTime(t *testing.T, ctx context.Context, js jetstream.JetStream, f *fleet) {
	live := f.member("w00").State() // read first: the scan below reaches its sequence
	src, err := replay.NewStreamSource(ctx, js, f.group)
	if err != nil {
		t.Fatal(err)
	}
	var recs []events.Record
	err = src.Scan(ctx, replay.ScanOptions{LogOnly: true}, func(r *events.Record) error {
		recs = append(recs, events.NewRecord(r.Seq, r.Time, r.Subject, cloneHeader(r.Header), bytes.Clone(r.Body)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 10 {
		t.Fatalf("only %d log records", len(recs))
	}
	rng := rand.New(rand.NewPCG(7, 7))
	backwards := retime(recs, func(i int, ts time.Time) time.Time { return recs[0].Time.Add(-time.Duration(i) * time.Second) })
	random := retime(recs, func(_ int, ts time.Time) time.Time {
		return ts.Add(time.Duration(rng.Int64N(int64(96*time.Hour))) - 48*time.Hour)
	})
	for name, alt := range map[string][]events.Record{"every step backwards": backwards, "random steps of up to ±2 days": random} {
		a, b := decider.New(), decider.New()
		compared, withLive := 0, false
		for i := range recs {
			oa, ob := decider.Apply(a, recs[i]), decider.Apply(b, alt[i])
			if fmt.Sprint(oa) != fmt.Sprint(ob) {
				t.Fatalf("%s: record %d folds to %v with its server time, %v with another", name, recs[i].Seq, oa, ob)
			}
			da, ha, erra := decider.Snapshot(a)
			db, hb, errb := decider.Snapshot(b)
			if erra != nil || errb != nil {
				continue // inside a multi-part event
			}
			if ha != hb {
				t.Fatalf("%s: the states differ after record %d:\n%s\n%s", name, recs[i].Seq, da, db)
			}
			compared++
			if a.LastSeq == live.LastSeq {
				_, hl, err := decider.Snapshot(live)
				if err != nil || hl != ha {
					t.Fatalf("%s: the live member's fold at %d differs from the refold (%v)", name, live.LastSeq, err)
				}
				withLive = true
			}
		}
		if !withLive {
			t.Fatalf("%s: the refold never reached the live member's sequence %d", name, live.LastSeq)
		}
		rep, err := replay.Audit(ctx, mustMemory(t, f.group, alt), replay.AuditOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Clean || rep.TimeStepsBack == 0 {
			t.Fatalf("%s: audit clean %v with %d backward steps; violations %+v", name, rep.Clean, rep.TimeStepsBack, rep.Violations)
		}
		t.Logf("%s: %d records, states identical after %d of them, audit clean, %d backward steps reported",
			name, len(recs), compared, rep.TimeStepsBack)
	}
}

func retime(recs []events.Record, ts func(i int, t time.Time) time.Time) []events.Record {
	out := make([]events.Record, len(recs))
	for i, r := range recs {
		out[i] = events.NewRecord(r.Seq, ts(i, r.Time), r.Subject, r.Header, r.Body)
	}
	return out
}

func cloneHeader(h map[string][]string) map[string][]string {
	if h == nil {
		return nil
	}
	out := make(map[string][]string, len(h))
	for k, v := range h {
		out[k] = append([]string(nil), v...)
	}
	return out
}

func mustMemory(t *testing.T, group string, recs []events.Record) replay.Source {
	t.Helper()
	src, err := replay.NewMemorySource(group, recs)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// A member whose lease clock jumps forward, as a boot clock does over a
// suspension: as a judge it expires nobody (its own heartbeats show a gap,
// which restarts its count), and its own lease ends at the jump; it owns
// again, with the same tokens, once a heartbeat sent after the jump is
// acknowledged. Nothing moves, nothing overlaps, the store rejects nothing.
func TestClockJumpForwardExpiresNobody(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := natstest.Server(t)
	_, js := natstest.Connect(t, s.ClientURL())
	f := newFleet(t, js, "jump", 32)
	stopAll(t, f)
	clocks := []*testClock{newTestClock(1), newTestClock(1), newTestClock(1), newTestClock(1)}
	st := newTokenStore()
	joinWithClocks(t, ctx, f, clocks)
	writeOwned(t, f, st, nil)
	tm := f.base.Timings
	const jumper = "w02"
	jclk := clocks[2]
	if v, ok := f.member("w00").State().Victim(jumper, 1); !ok || v.ID != "w01" {
		t.Fatalf("%s does not judge w01", jumper)
	}
	j := f.member(jumper)
	held := j.Assigned()
	if len(held) == 0 {
		t.Fatal("the jumping member owns nothing")
	}
	incs := incarnations(f)
	before := f.owners()

	jump := 2 * tm.Expiry
	at := jclk.Jump(jump)
	if n := len(j.Assigned()); n != 0 {
		t.Fatalf("a %v jump past the lease left %d partitions owned", jump, n)
	}
	for _, a := range held {
		if j.Owns(a.Partition, a.Token) {
			t.Fatalf("Owns(%s, %s) after a jump past the lease", a.Partition, a.Token)
		}
	}
	// Long enough for any verdict: the jumper has run, heartbeating and
	// judging, for more than an expiry on its own clock since the jump, and
	// owns its partitions again.
	waitFor(t, 30*time.Second, "the jumper to have run an expiry past the jump and to own again", func() bool {
		return jclk.Now() > at+jump+tm.Expiry+tm.Heartbeat && len(j.Assigned()) == len(held)
	})
	for _, a := range held {
		if !j.Owns(a.Partition, a.Token) {
			t.Errorf("after the jump %s is not owned again with its token %s", a.Partition, a.Token)
		}
	}
	for id, inc := range incarnations(f) {
		if inc != incs[id] {
			t.Errorf("member %s was expired after %s's clock jumped: incarnation %d → %d", id, jumper, incs[id], inc)
		}
	}
	if n := len(f.member("w00").State().LiveMembers()); n != 4 {
		t.Errorf("%d live members, want 4", n)
	}
	if n := moved(before, f.owners()); n != 0 {
		t.Errorf("a clock jump moved %d partitions", n)
	}
	f.checkNoOverlap()
	if bad := st.writes(func(w storeWrite) bool { return !w.OK }); len(bad) != 0 {
		t.Errorf("the store rejected %d writes, first %+v", len(bad), bad[0])
	}
	st.check(t)
}

// A suspended member (its clock stands still and it neither runs nor reaches
// the network) is expired and its partitions are taken over; while suspended
// it still "believes" it owns them, which is harmless only because it does
// not run. When it wakes, its clock jumps by the suspension (as
// CLOCK_BOOTTIME does), and at once, before any network news, it owns
// nothing: a clock that did not count the suspension would have left it
// acting on partitions others own. It then rejoins as a new incarnation.
func TestClockSuspensionEndsLeaseAtWake(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := natstest.Server(t)
	proxy, err := faultproxy.Start(s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	_, direct := natstest.Connect(t, s.ClientURL())
	_, cut := natstest.Connect(t, proxy.URL())
	const victim = "w01"
	f := newFleet(t, direct, "suspend", 24)
	f.jsFor = func(id string) jetstream.JetStream {
		if id == victim {
			return cut
		}
		return direct
	}
	stopAll(t, f)
	vclk := newTestClock(1)
	st := newTokenStore()
	var mu sync.Mutex
	suspended := false
	joinWithClocks(t, ctx, f, []*testClock{nil, vclk, nil})
	writeOwned(t, f, st, func(id string) bool { mu.Lock(); defer mu.Unlock(); return id == victim && suspended })
	v := f.member(victim)
	mine := ownedBy(f.member("w00"), victim)
	held := v.Assigned()
	if len(mine) == 0 || len(held) != len(mine) {
		t.Fatalf("the victim owns %d partitions, acts on %d", len(mine), len(held))
	}
	inc := v.Incarnation()
	boot := clock.Boot()

	// Suspend: the application stops, the clock stands still, the network
	// is silent.
	mu.Lock()
	suspended = true
	mu.Unlock()
	vclk.SetRate(0)
	proxy.SetMode(faultproxy.Blackhole)
	suspendAt := boot.Now()
	waitFor(t, 30*time.Second, "the suspended member's partitions to be re-owned", func() bool {
		return reowned(f.member("w00"), victim, mine) && st.newerAccepted(mine)
	})
	if len(v.Assigned()) == 0 {
		t.Fatal("with its clock stopped the suspended member's lease ended anyway: the test does not show what the jump does")
	}

	// Wake: the boot clock counted the suspension.
	slept := boot.Now() - suspendAt
	vclk.Jump(slept)
	vclk.SetRate(1)
	if n := len(v.Assigned()); n != 0 {
		t.Fatalf("woken after %v, the member still acts on %d partitions others own", slept, n)
	}
	for _, a := range held {
		if v.Owns(a.Partition, a.Token) {
			t.Fatalf("woken, Owns(%s, %s) is true", a.Partition, a.Token)
		}
	}
	t.Logf("suspended for %v (expiry %v): re-owned meanwhile; at wake the lease had ended", slept, f.base.Timings.Expiry)
	mu.Lock()
	suspended = false
	mu.Unlock()
	proxy.SetMode(faultproxy.Pass)
	proxy.Reset()
	waitFor(t, 60*time.Second, "the woken member to rejoin as a new incarnation", func() bool { return v.Incarnation() > inc })
	f.waitSettled(60 * time.Second)

	// A suspended process does not act: its intervals end at the suspension
	// (and it acted on nothing at wake, checked above).
	f.rec.mu.Lock()
	for _, ivs := range f.rec.ivs {
		for _, iv := range ivs {
			if iv.member == fmt.Sprintf("%s#1", victim) && (iv.end == 0 || iv.end > suspendAt) {
				iv.end = suspendAt
			}
		}
	}
	f.rec.mu.Unlock()
	f.checkNoOverlap()
	if bad := st.writes(func(w storeWrite) bool { return !w.OK }); len(bad) != 0 {
		t.Errorf("the store rejected %d writes, first %+v", len(bad), bad[0])
	}
	st.check(t)
}

// Beyond the promise: the cut-off member's lease clock goes grossly wrong
// (10× slow) so its lease outlives the expiry and it keeps acting on
// partitions the group has handed on. Fencing is then the guarantee: the
// store rejects its writes (carrying its old tokens) once the new owners
// wrote, never accepts an older token after a newer one, and rejects nobody
// else. When the network heals the member learns it was expired and stops
// treating its old partitions as owned.
func TestClockGrosslySlowIsFencedByTokens(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := natstest.Server(t)
	proxy, err := faultproxy.Start(s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	_, direct := natstest.Connect(t, s.ClientURL())
	_, cut := natstest.Connect(t, proxy.URL())
	const victim = "w01"
	f := newFleet(t, direct, "gross", 24)
	f.jsFor = func(id string) jetstream.JetStream {
		if id == victim {
			return cut
		}
		return direct
	}
	stopAll(t, f)
	vclk := newTestClock(1)
	st := newTokenStore()
	joinWithClocks(t, ctx, f, []*testClock{nil, vclk, nil})
	writeOwned(t, f, st, nil)
	v := f.member(victim)
	mine := ownedBy(f.member("w00"), victim)
	if len(mine) == 0 {
		t.Fatal("the victim owns nothing")
	}
	old := fmt.Sprintf("%s#%d", victim, v.Incarnation())
	stale := func(w storeWrite) bool { return !w.OK && w.Writer == old }

	vclk.SetRate(0.1)
	proxy.SetMode(faultproxy.Blackhole)
	waitFor(t, 30*time.Second, "the victim's partitions to be re-owned and a stale write of each rejected", func() bool {
		if !reowned(f.member("w00"), victim, mine) || !st.newerAccepted(mine) {
			return false
		}
		seen := map[string]bool{}
		for _, w := range st.writes(stale) {
			seen[w.Part] = true
		}
		return len(seen) == len(mine)
	})
	if len(v.Assigned()) == 0 {
		t.Fatal("the victim stopped acting: nothing here goes beyond the promise")
	}
	proxy.SetMode(faultproxy.Pass)
	proxy.Reset()
	vclk.SetRate(1)
	inc := v.Incarnation()
	waitFor(t, 60*time.Second, "the victim to learn it was expired and rejoin", func() bool { return v.Incarnation() > inc })
	for p, tok := range mine {
		if v.Owns(p, tok) {
			t.Errorf("after rejoining, the victim still owns %s with its old token %s", p, tok)
		}
	}
	f.waitSettled(60 * time.Second)

	rejected := st.writes(stale)
	if len(rejected) == 0 {
		t.Fatal("no stale write was rejected")
	}
	for _, w := range rejected {
		if !w.Token.Less(w.High) {
			t.Errorf("a rejected write %+v was not older than the store's highest", w)
		}
	}
	if bad := st.writes(func(w storeWrite) bool { return !w.OK && w.Writer != old }); len(bad) != 0 {
		t.Errorf("the store rejected %d writes of current owners, first %+v", len(bad), bad[0])
	}
	st.check(t)
	t.Logf("%d stale writes of the 10×-slow member rejected over %d partitions", len(rejected), len(mine))
}
