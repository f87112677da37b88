package test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
	"github.com/parti-io/parti/consumer"
	"github.com/parti-io/parti/internal/natstest"
	"github.com/parti-io/parti/internal/testhooks"
)

func (r *chaosRig) fatalf(format string, args ...any) {
	r.t.Helper()
	if r.t.Failed() {
		r.dumpRecent()
	}
	r.mu.Lock()
	r.t.Logf("seed %d: timeline:\n%s", r.seed, strings.Join(r.events, "\n"))
	r.mu.Unlock()
	r.t.Fatalf("seed %d (%s): %s", r.seed, r.env.name, fmt.Sprintf(format, args...))
}

func (r *chaosRig) now() time.Duration { return r.rec.clk.Now() }

func (r *chaosRig) consumerOpTimeout() time.Duration { return 2 * time.Second }

// connect opens id's connection through its proxies (never to a server
// directly: discovered server URLs are ignored).
func (r *chaosRig) connect(id string) *nats.Conn {
	r.t.Helper()
	var urls []string
	for _, p := range r.prox[id] {
		urls = append(urls, p.URL())
	}
	nc, _ := natstest.Connect(r.t, strings.Join(urls, ","), nats.IgnoreDiscoveredServers())
	return nc
}

// tryJoin starts a consumer helper with ID id on nc. Safe from any
// goroutine.
func (r *chaosRig) tryJoin(id string, nc *nats.Conn) error {
	r.mu.Lock()
	r.gen[id]++
	name := fmt.Sprintf("%s#%d", id, r.gen[id])
	mc := r.base
	r.mu.Unlock()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	var mm sync.Mutex
	var mem *parti.Member
	member := func() *parti.Member { mm.Lock(); defer mm.Unlock(); return mem }
	lease := func() time.Duration {
		if m := member(); m != nil {
			return testhooks.LeaseDeadline(m)
		}
		return 0
	}
	mc.ID = id
	rec := r.rec.handler(name, lease).(parti.HandlerFuncs)
	mc.Handler = parti.HandlerFuncs{
		OnAssigned: func(a parti.Assignment) {
			r.tracef("%s assigned %s token %s", name, a.Partition, a.Token)
			rec.OnAssigned(a)
		},
		OnRevoked: func(a parti.Assignment, why parti.RevokeReason) {
			r.tracef("%s revoked %s token %s: %v", name, a.Partition, a.Token, why)
			rec.OnRevoked(a, why)
		},
	}
	ccfg := consumer.Config{
		Stream: "EVENTS", Subject: "events.{partition}", Handler: r.led.handler(name, member),
		DrainTimeout: 15 * time.Second, OpTimeout: r.consumerOpTimeout(),
		CheckInterval: 2 * time.Second,
	}
	// A join that fails is retried, as a supervisor would restart the
	// process (counted and reported: the helper's Join does not retry
	// transient errors as parti.Join does).
	var c *consumer.Consumer
	for try := 1; ; try++ {
		c, err = consumer.Join(r.ctx, js, mc, ccfg)
		if err == nil || try == 5 || r.ctx.Err() != nil {
			break
		}
		r.mu.Lock()
		r.joinRetries = append(r.joinRetries, fmt.Sprintf("%s: %v", name, err))
		r.mu.Unlock()
		<-time.After(time.Duration(try) * 500 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("join %s: %w", name, err)
	}
	mm.Lock()
	mem = c.Member()
	mm.Unlock()
	r.mu.Lock()
	r.members[id] = &chaosMember{id: id, name: name, c: c, nc: nc}
	r.leases[name] = lease
	r.mu.Unlock()
	return nil
}

func (r *chaosRig) join(id string) {
	r.t.Helper()
	if err := r.tryJoin(id, r.connect(id)); err != nil {
		r.fatalf("%v", err)
	}
}

func (r *chaosRig) member(id string) *chaosMember {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.members[id]
}

func (r *chaosRig) drop(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.members, id)
}

func (r *chaosRig) all() []*chaosMember {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, 0, len(r.members))
	for id := range r.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]*chaosMember, len(ids))
	for i, id := range ids {
		out[i] = r.members[id]
	}
	return out
}

// stopAll stops every running helper (the end of the test).
func (r *chaosRig) stopAll() {
	for _, m := range r.all() {
		m.c.Stop()
		m.nc.Close()
	}
}

// supervise restarts a helper that stopped by itself (as a process
// supervisor would) and records it as a hard fault of that member.
func (r *chaosRig) supervise() {
	for _, m := range r.all() {
		select {
		case <-m.c.Done():
		default:
			continue
		}
		now := r.now()
		r.t.Logf("seed %d: %s stopped by itself: %v (restarting it)", r.seed, m.name, m.c.Err())
		r.mu.Lock()
		r.selfStops = append(r.selfStops, fmt.Sprintf("%s: %v", m.name, m.c.Err()))
		r.faults = append(r.faults, &faultWin{kind: "self-stop", who: m.name, start: now, end: now + r.bound})
		r.mu.Unlock()
		m.nc.Close()
		r.drop(m.id)
		r.join(m.id)
	}
}

// settled: every member's fold is settled at the same sequence with every
// running member live, each holds exactly what the fold gives it, and the
// helpers together consume every partition.
func (r *chaosRig) settled() bool {
	ms := r.all()
	if len(ms) == 0 {
		return false
	}
	var seq uint64
	consuming := 0
	for i, m := range ms {
		if m.c.Err() != nil {
			return false
		}
		mem := m.c.Member()
		s := mem.State()
		if i == 0 {
			seq = s.LastSeq
		} else if s.LastSeq != seq {
			return false
		}
		if len(s.Partitions) != len(r.parts) || !mem.GroupSettled(len(ms)) {
			return false
		}
		n := len(mem.Assigned())
		if n != len(s.Owned(mem.ID(), mem.Incarnation())) || m.c.Stats().Partitions != n {
			return false
		}
		consuming += n
	}
	return consuming == len(r.parts)
}

// settleReport says, member by member, what settled() sees.
func (r *chaosRig) settleReport() string {
	var b strings.Builder
	for _, m := range r.all() {
		mem := m.c.Member()
		s := mem.State()
		fmt.Fprintf(&b, "\n  %s inc %d: err %v; fold at %d (%s, %d live, %d unowned), group settled %v; assigned %d, owned by the fold %d, consuming %d",
			m.name, mem.Incarnation(), m.c.Err(), s.LastSeq, s.Phase(), len(s.LiveMembers()), s.Unowned(), mem.GroupSettled(0),
			len(mem.Assigned()), len(s.Owned(mem.ID(), mem.Incarnation())), m.c.Stats().Partitions)
	}
	return b.String()
}

// settle waits until the group settled after a fault healed at healed, then
// until every partition processed a message that started after that, and
// records both times (inject records the whole span from the injection,
// "reown"). incs, if set, are the incarnations before the fault:
// those that ended are counted against kind.
func (r *chaosRig) settle(kind string, healed time.Duration, incs map[string]uint64) {
	r.t.Helper()
	start := time.Now()
	for !r.settled() {
		r.supervise()
		if time.Since(start) > r.bound {
			r.fatalf("%s: the group did not settle within %v (faults so far %v): %s", kind, r.bound, r.counts, r.settleReport())
		}
		<-time.After(50 * time.Millisecond)
	}
	settled := r.now() - healed
	noted := false
	for !r.led.allSince(r.parts, healed) {
		r.supervise()
		if !noted && time.Since(start) > 10*time.Second {
			noted = true
			r.note("%s: still idle 10s after the heal: %s", kind, r.owning(r.led.idleSince(r.parts, healed)))
			r.t.Logf("seed %d: %s: partitions still idle 10s after the heal: %s", r.seed, kind, r.owning(r.led.idleSince(r.parts, healed)))
		}
		if time.Since(start) > r.bound {
			r.fatalf("%s: some partition processed nothing within %v of the heal: %v", kind, r.bound, r.led.idleSince(r.parts, healed))
		}
		<-time.After(20 * time.Millisecond)
	}
	resumed := r.now() - healed
	r.mu.Lock()
	r.worst["settle:"+kind] = max(r.worst["settle:"+kind], settled)
	r.worst["resume:"+kind] = max(r.worst["resume:"+kind], resumed)
	r.mu.Unlock()
	for _, m := range r.all() {
		if want, ok := incs[m.name]; ok && m.c.Member().Incarnation() != want {
			r.mu.Lock()
			r.expired[kind]++
			r.mu.Unlock()
			if noExpiry[kind] {
				r.t.Errorf("seed %d: %s: %s was expired: incarnation %d → %d", r.seed, kind, m.name, want, m.c.Member().Incarnation())
				r.dumpExpiry(m.id, want)
			}
		}
	}
}

// settleOnly waits until the group settled (no progress is asked: the
// producer stopped).
func (r *chaosRig) settleOnly(kind string) {
	r.t.Helper()
	start := time.Now()
	for !r.settled() {
		r.supervise()
		if time.Since(start) > r.bound {
			r.fatalf("%s: the group did not settle within %v: %s", kind, r.bound, r.settleReport())
		}
		<-time.After(50 * time.Millisecond)
	}
}

// owning names the owner of each of parts in the first member's fold.
func (r *chaosRig) owning(parts []string) string {
	ms := r.all()
	if len(ms) == 0 {
		return fmt.Sprint(parts)
	}
	s := ms[0].c.Member().State()
	by := map[string][]string{}
	for _, p := range parts {
		if i, ok := s.PartitionIndex(p); ok {
			o := s.Owners[i]
			k := fmt.Sprintf("%s/%d", o.Owner, o.Inc)
			by[k] = append(by[k], p)
		}
	}
	return fmt.Sprint(by)
}

// incarnations returns the running members' incarnations by name.
func (r *chaosRig) incarnations() map[string]uint64 {
	out := map[string]uint64{}
	for _, m := range r.all() {
		out[m.name] = m.c.Member().Incarnation()
	}
	return out
}
