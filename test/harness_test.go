package test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parti-io/parti/internal/waitfor"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parti-io/parti"
	"github.com/parti-io/parti/internal/clock"
	"github.com/parti-io/parti/internal/testhooks"
	"github.com/parti-io/parti/liveness"
)

// testTimings is the integration profile: production-like ratios, a margin of
// at least 1 s (these machines stall for up to a second now and then).
func testTimings() liveness.Timings { return liveness.Test() }

// interval is one member's ownership of one partition, from its own point of
// view: from Assigned until it stopped acting, never past its lease.
type interval struct {
	member string
	token  string
	start  time.Duration
	end    time.Duration // 0 while open
	// leaseAtCancel is the member's lease deadline when the assignment's
	// context ended (0 before). An interval revoked because the lease was
	// lost or the member stopped ends there at the latest: the Revoked call
	// may come much later (a consumer helper's revocation waits for its
	// handlers and for the server), and by then the member may have a new
	// incarnation with a new lease. A partition moved or dropped is handed
	// on only after Revoked returned: its interval ends there.
	leaseAtCancel time.Duration
}

// recorder records every member's ownership intervals on one shared clock
// (all members of a test run in this process).
type recorder struct {
	clk clock.Clock
	mu  sync.Mutex
	ivs map[string][]*interval // by partition
}

func newRecorder() *recorder {
	return &recorder{clk: clock.Boot(), ivs: map[string][]*interval{}}
}

// handler returns the handler for one member; lease returns that member's
// lease deadline on the shared clock.
func (r *recorder) handler(name string, lease func() time.Duration) parti.Handler {
	return parti.HandlerFuncs{
		OnAssigned: func(a parti.Assignment) {
			iv := &interval{member: name, token: a.Token.String(), start: r.clk.Now()}
			r.mu.Lock()
			r.ivs[a.Partition] = append(r.ivs[a.Partition], iv)
			r.mu.Unlock()
			if a.Context != nil {
				context.AfterFunc(a.Context, func() {
					d := lease()
					r.mu.Lock()
					defer r.mu.Unlock()
					if iv.leaseAtCancel == 0 {
						iv.leaseAtCancel = d
					}
				})
			}
		},
		OnRevoked: func(a parti.Assignment, why parti.RevokeReason) {
			now := r.clk.Now()
			r.mu.Lock()
			defer r.mu.Unlock()
			for _, iv := range r.ivs[a.Partition] {
				if iv.member == name && iv.token == a.Token.String() && iv.end == 0 {
					iv.end = now
					if why == parti.RevokeLeaseLost || why == parti.RevokeStopped {
						d := iv.leaseAtCancel
						if d == 0 {
							d = lease()
						}
						if d > 0 && d < now {
							iv.end = d
						}
					}
				}
			}
		},
	}
}

// checkNoOverlap fails the test if two intervals of one partition overlap.
// Open intervals end at their member's lease deadline at check time.
func (r *recorder) checkNoOverlap(t *testing.T, leases map[string]func() time.Duration) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clk.Now()
	for p, ivs := range r.ivs {
		type span struct {
			who        string
			start, end time.Duration
		}
		var spans []span
		for _, iv := range ivs {
			end := iv.end
			if end == 0 {
				end = now
				if iv.leaseAtCancel != 0 {
					end = min(end, iv.leaseAtCancel)
				} else if l := leases[iv.member]; l != nil {
					end = min(end, l())
				}
			}
			spans = append(spans, span{iv.member + "@" + iv.token, iv.start, end})
		}
		slices.SortFunc(spans, func(a, b span) int { return int(a.start - b.start) })
		for i := 1; i < len(spans); i++ {
			for j := 0; j < i; j++ {
				if spans[j].end > spans[i].start {
					t.Errorf("partition %s: %s [%v,%v] overlaps %s [%v,%v]", p,
						spans[j].who, spans[j].start, spans[j].end, spans[i].who, spans[i].start, spans[i].end)
				}
			}
		}
	}
}

// fleet is a set of members of one group in this process.
type fleet struct {
	t       *testing.T
	js      jetstream.JetStream
	jsFor   func(name string) jetstream.JetStream
	group   string
	parts   []string
	rec     *recorder
	base    parti.Config
	mu      sync.Mutex
	members map[string]*parti.Member
	leases  map[string]func() time.Duration
	gen     map[string]int
}

func partitions(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("p-%04d", i)
	}
	return out
}

func newFleet(t *testing.T, js jetstream.JetStream, group string, nparts int) *fleet {
	f := &fleet{
		t: t, js: js, group: group, parts: partitions(nparts), rec: newRecorder(),
		members: map[string]*parti.Member{}, leases: map[string]func() time.Duration{}, gen: map[string]int{},
	}
	f.base = parti.Config{
		Group: group, Partitions: f.parts, Timings: testTimings(),
		Window: 300 * time.Millisecond, Grace: 20 * time.Second,
	}
	// Join's context bounds joining only: members still running when the
	// test ends are stopped here (Stop is idempotent).
	t.Cleanup(func() {
		for _, m := range f.all() {
			m.Stop()
		}
	})
	return f
}

// join starts a member with ID id (name in the recorder: id#generation).
func (f *fleet) join(ctx context.Context, id string) *parti.Member {
	f.t.Helper()
	m, err := f.tryJoin(ctx, id)
	if err != nil {
		f.t.Fatalf("join %s: %v", id, err)
	}
	return m
}

// tryJoin is join for other goroutines than the test's: it returns the error.
func (f *fleet) tryJoin(ctx context.Context, id string) (*parti.Member, error) {
	f.mu.Lock()
	f.gen[id]++
	name := fmt.Sprintf("%s#%d", id, f.gen[id])
	f.mu.Unlock()
	var m *parti.Member
	var mmu sync.Mutex
	lease := func() time.Duration {
		mmu.Lock()
		defer mmu.Unlock()
		if m == nil {
			return 0
		}
		return testhooks.LeaseDeadline(m)
	}
	cfg := f.base
	cfg.ID = id
	cfg.Handler = f.rec.handler(name, lease)
	js := f.js
	if f.jsFor != nil {
		js = f.jsFor(id)
	}
	jm, err := parti.Join(ctx, js, cfg)
	if err != nil {
		return nil, err
	}
	mmu.Lock()
	m = jm
	mmu.Unlock()
	f.mu.Lock()
	f.members[id] = jm
	f.leases[name] = lease
	f.mu.Unlock()
	return jm, nil
}

func (f *fleet) member(id string) *parti.Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.members[id]
}

func (f *fleet) drop(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.members, id)
}

func (f *fleet) all() []*parti.Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]string, 0, len(f.members))
	for id := range f.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]*parti.Member, len(ids))
	for i, id := range ids {
		out[i] = f.members[id]
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	waitfor.Until(t, timeout, what, cond)
}

// settled reports whether every member's fold is stable at the same sequence,
// every partition is owned by a current member, and every member holds
// exactly what the fold gives it.
func (f *fleet) settled() bool {
	ms := f.all()
	if len(ms) == 0 {
		return false
	}
	var seq uint64
	for i, m := range ms {
		if m.Err() != nil {
			return false
		}
		s := m.State()
		if i == 0 {
			seq = s.LastSeq
		} else if s.LastSeq != seq {
			return false
		}
		if len(s.Partitions) != len(f.parts) || len(m.Assigned()) != len(s.Owned(m.ID(), m.Incarnation())) {
			return false
		}
		if !m.GroupSettled(len(ms)) {
			return false
		}
	}
	return true
}

func (f *fleet) waitSettled(timeout time.Duration) {
	f.t.Helper()
	waitFor(f.t, timeout, "the fleet to settle", f.settled)
}

// owners returns partition → owner ID in the first member's fold.
func (f *fleet) owners() map[string]string {
	ms := f.all()
	s := ms[0].State()
	out := map[string]string{}
	for i, o := range s.Owners {
		out[s.Partitions[i]] = o.Owner
	}
	return out
}

func (f *fleet) checkNoOverlap() {
	f.t.Helper()
	f.mu.Lock()
	leases := map[string]func() time.Duration{}
	for k, v := range f.leases {
		leases[k] = v
	}
	f.mu.Unlock()
	f.rec.checkNoOverlap(f.t, leases)
}

func moved(a, b map[string]string) int {
	n := 0
	for p, o := range a {
		if b[p] != o {
			n++
		}
	}
	return n
}

// open returns the number of intervals not yet ended by a revocation.
func (r *recorder) open() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ivs := range r.ivs {
		for _, iv := range ivs {
			if iv.end == 0 {
				n++
			}
		}
	}
	return n
}
