package decider

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/parti-io/parti/events"
)

// The benchmark log: a group of 200 members and 10,000 partitions
// (benchFull), driven through the decider's own commands from a cold start
// and then through 600 rounds of churn. Each round takes one member out
// (a graceful leave, a crash removed on a verdict, or a close for restart
// whose grace ends) and brings one in (a planned join behind a window), or
// restarts a member inside its grace (zero moves); every decision is followed
// by the sources' releases, one event per source member. With 200 members
// most releases carry one or two partitions, as they do in production.
const benchSubject = "parti.bench.log"

// benchShape sizes a generated log.
type benchShape struct{ members, partitions, rounds int }

var benchFull = benchShape{members: 200, partitions: 10000, rounds: 600}

// benchLog is a generated log: its records (decoded), the number of records
// of the cold start (claims, declaration, window, first decision), the count
// of each event type, and the generator's final state.
type benchLog struct {
	recs      []events.Record
	coldStart int
	kinds     map[events.Type]int
	final     *State
}

var (
	benchOnce sync.Once
	benchData benchLog
	benchErr  error
)

// logGen drives a State through the commands and records what it appends.
type logGen struct {
	s     *State
	seq   uint64
	recs  []events.Record
	rng   *rand.Rand
	nonce int
	kinds map[events.Type]int
}

func (g *logGen) emit(ev events.Event) error {
	g.seq++
	body, err := events.Encode(events.MaxVersion, ev)
	if err != nil {
		return err
	}
	r := events.NewRecord(g.seq, fixedTime(g.seq), benchSubject, nil, body)
	if r.Err != nil {
		return fmt.Errorf("seq %d: %w", g.seq, r.Err)
	}
	g.recs = append(g.recs, r)
	g.kinds[ev.Type()]++
	if out := Apply(g.s, r); out.Kind != Applied && out.Kind != Partial {
		return fmt.Errorf("seq %d %T: %v (%s)", g.seq, ev, out.Kind, out.Reason)
	}
	return nil
}

func (g *logGen) leader() *Member {
	l, _ := g.s.Leader()
	return l
}

func (g *logGen) claim(id string) error {
	g.nonce++
	c, err := Claim(id, fmt.Sprintf("%016x", g.rng.Uint64()^uint64(g.nonce)), 0)
	if err != nil {
		return err
	}
	return g.emit(c)
}

// decideAndRelease appends the leader's decision, if any, and every
// source's release of what it was asked to move (one event per source, in
// the decision's order), as a member does on seeing the decision.
func (g *logGen) decideAndRelease() error {
	l := g.leader()
	d, err := Decide(g.s, l.ID, l.Incarnation)
	if err != nil || d == nil {
		return err
	}
	for _, part := range SplitDecision(d, 2000) {
		if err := g.emit(part); err != nil {
			return err
		}
	}
	var rel *events.PartitionsReleased
	for _, mv := range d.Moves {
		if mv.From == "" {
			continue
		}
		if rel != nil && (rel.Member != mv.From || rel.Incarnation != mv.FromInc) {
			if err := g.emit(rel); err != nil {
				return err
			}
			rel = nil
		}
		if rel == nil {
			rel = &events.PartitionsReleased{Member: mv.From, Incarnation: mv.FromInc}
		}
		mv.Parts.Each(func(p uint32) bool {
			rel.Released = append(rel.Released, events.Released{Partition: p, Token: g.s.Owners[p].Token})
			return true
		})
	}
	if rel != nil {
		return g.emit(rel)
	}
	return nil
}

func (g *logGen) closeWindow() error {
	if !g.s.Window {
		return nil
	}
	l := g.leader()
	w, err := CloseWindow(g.s, l.ID, l.Incarnation, 100)
	if err != nil {
		return err
	}
	return g.emit(w)
}

// randomMember returns a live member other than the leader (so that the
// leader, which decides, is stable; leadership changes are tested elsewhere).
func (g *logGen) randomMember() *Member {
	live := g.s.LiveMembers()
	return live[1+g.rng.IntN(len(live)-1)]
}

func generateBenchLog(sh benchShape) (benchLog, error) {
	g := &logGen{s: New(), rng: rand.New(rand.NewPCG(1, 2)), kinds: map[events.Type]int{}}
	for range sh.members {
		if err := g.claim(""); err != nil {
			return benchLog{}, err
		}
	}
	ids := make([]string, sh.partitions)
	for i := range ids {
		ids[i] = fmt.Sprintf("tenant-%05d", i)
	}
	l := g.leader()
	decl, err := Declare(g.s, l.ID, l.Incarnation, ids, nil, "", (sh.partitions+1)/2)
	if err != nil {
		return benchLog{}, err
	}
	for _, d := range decl {
		if err := g.emit(d); err != nil {
			return benchLog{}, err
		}
	}
	if err := g.closeWindow(); err != nil {
		return benchLog{}, err
	}
	if err := g.decideAndRelease(); err != nil {
		return benchLog{}, err
	}
	coldStart := len(g.recs)

	for round := range sh.rounds {
		m := g.randomMember()
		var err error
		switch k := g.rng.IntN(10); {
		case k < 4: // graceful leave, then a planned join
			err = g.emit(&events.MemberLeft{Member: m.ID, Incarnation: m.Incarnation})
			if err == nil {
				err = g.decideAndRelease()
			}
		case k < 7: // crash: a verdict's removal, an emergency decision
			err = g.emit(&events.MemberRemoved{Member: m.ID, Incarnation: m.Incarnation,
				Reason: events.ReasonExpired, VerdictSeq: uint64(round) + 1, Judge: "worker-0", SpanMillis: 6000})
			if err == nil {
				err = g.decideAndRelease()
			}
		case k < 8: // close for restart, grace ends, partitions move
			err = g.emit(&events.MemberClosing{Member: m.ID, Incarnation: m.Incarnation})
			if err == nil {
				l := g.leader()
				var ge *events.GraceEnded
				if ge, err = EndGrace(g.s, l.ID, l.Incarnation, m.ID, m.Incarnation, 30000); err == nil {
					err = g.emit(ge)
				}
			}
			if err == nil {
				err = g.decideAndRelease()
			}
		default: // restart inside the grace: zero moves, no join needed
			err = g.emit(&events.MemberClosing{Member: m.ID, Incarnation: m.Incarnation})
			if err == nil {
				err = g.claim(m.ID)
			}
			if err == nil {
				continue
			}
		}
		if err == nil {
			err = g.claim("")
		}
		if err == nil {
			err = g.closeWindow()
		}
		if err == nil {
			err = g.decideAndRelease()
		}
		if err != nil {
			return benchLog{}, fmt.Errorf("round %d: %w", round, err)
		}
	}
	if err := CheckInvariants(g.s); err != nil {
		return benchLog{}, err
	}
	if n := g.s.Unowned() + g.s.InFlight(); n != 0 {
		return benchLog{}, fmt.Errorf("log ends with %d partitions unowned or moving", n)
	}
	return benchLog{recs: g.recs, coldStart: coldStart, kinds: g.kinds, final: g.s}, nil
}

func loadBenchLog(b *testing.B) benchLog {
	b.Helper()
	benchOnce.Do(func() {
		start := time.Now()
		benchData, benchErr = generateBenchLog(benchFull)
		if benchErr == nil {
			b.Logf("generated %d records (%d of cold start) in %v: %v", len(benchData.recs), benchData.coldStart,
				time.Since(start).Round(time.Millisecond), benchData.kinds)
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchData
}

// reportFold reports records/s, ns/record and allocs/record for a benchmark
// whose every iteration folded n records.
func reportFold(b *testing.B, n int, mallocs uint64) {
	total := float64(b.N) * float64(n)
	b.ReportMetric(total/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, "ns/record")
	b.ReportMetric(float64(mallocs)/total, "allocs/record")
}

func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// BenchmarkApply folds the generated log of pre-decoded records: "log" from
// New() (cold start included: 200 claims, a 10,000-partition declaration in
// two parts, the cold-start decision), "churn" only the churn that follows,
// from a copy of the state after the cold start.
func BenchmarkApply(b *testing.B) {
	lg := loadBenchLog(b)
	b.Run("log", func(b *testing.B) {
		b.ReportAllocs()
		before := mallocs()
		for b.Loop() {
			s := New()
			for _, r := range lg.recs {
				Apply(s, r)
			}
		}
		reportFold(b, len(lg.recs), mallocs()-before)
	})
	b.Run("churn", func(b *testing.B) {
		base := New()
		for _, r := range lg.recs[:lg.coldStart] {
			Apply(base, r)
		}
		churn := lg.recs[lg.coldStart:]
		b.ReportAllocs()
		var allocs uint64
		for b.Loop() {
			b.StopTimer()
			s := base.Clone()
			b.StartTimer()
			before := mallocs()
			for _, r := range churn {
				Apply(s, r)
			}
			allocs += mallocs() - before
		}
		reportFold(b, len(churn), allocs)
	})
}

// BenchmarkApplyRelease folds one-partition releases: member a owns 10,000
// partitions, half of them moving to b; each op folds one release. It must
// not allocate.
func BenchmarkApplyRelease(b *testing.B) {
	f := newFolder(b)
	f.join("a")
	f.declare(benchFull.partitions)
	f.closeWindow()
	f.decide()
	f.join("b")
	f.closeWindow()
	f.decide()
	base := f.s.Clone()
	var recs []events.Record
	var parts []uint32
	for i, o := range base.Owners {
		if o.Target != "" {
			f.seq++
			recs = append(recs, events.NewRecord(f.seq, fixedTime(f.seq), "parti.g.log", nil,
				events.MustEncode(1, &events.PartitionsReleased{Member: o.Owner, Incarnation: o.Inc,
					Released: []events.Released{{Partition: uint32(i), Token: o.Token}}})))
			parts = append(parts, uint32(i))
		}
	}
	if len(recs) < 1000 {
		b.Fatalf("only %d moves in flight", len(recs))
	}
	s := base.Clone()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(recs) {
			// Rewind: restore the released partitions and the position.
			for _, p := range parts {
				s.Owners[p] = base.Owners[p]
			}
			s.LastSeq = base.LastSeq
			i = 0
		}
		if out := Apply(s, recs[i]); out.Kind != Applied {
			b.Fatalf("release %d: %v (%s)", i, out.Kind, out.Reason)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkDecodeAndApply decodes every body of the generated log and folds
// it, from New(): what a member does when it catches up on the log.
func BenchmarkDecodeAndApply(b *testing.B) {
	lg := loadBenchLog(b)
	type raw struct {
		seq  uint64
		time time.Time
		body []byte
	}
	raws := make([]raw, len(lg.recs))
	size := 0
	for i, r := range lg.recs {
		raws[i] = raw{r.Seq, r.Time, r.Body}
		size += len(r.Body)
	}
	for _, bc := range []struct {
		name string
		from int
	}{{"log", 0}, {"churn", lg.coldStart}} {
		b.Run(bc.name, func(b *testing.B) {
			base := New()
			for _, r := range lg.recs[:bc.from] {
				Apply(base, r)
			}
			rs := raws[bc.from:]
			b.ReportAllocs()
			var allocs uint64
			for b.Loop() {
				b.StopTimer()
				s := base.Clone()
				b.StartTimer()
				before := mallocs()
				for _, r := range rs {
					rec := events.NewRecord(r.seq, r.time, benchSubject, nil, r.body)
					Apply(s, rec)
				}
				allocs += mallocs() - before
			}
			reportFold(b, len(rs), allocs)
		})
	}
}

// TestBenchLogFolds checks the benchmarks' generator on a smaller group:
// every record applies, the invariants hold after each, and a refold from
// New() gives the generator's state.
func TestBenchLogFolds(t *testing.T) {
	lg, err := generateBenchLog(benchShape{members: 12, partitions: 300, rounds: 60})
	if err != nil {
		t.Fatal(err)
	}
	s := New()
	for _, r := range lg.recs {
		if out := Apply(s, r); out.Kind != Applied && out.Kind != Partial {
			t.Fatalf("seq %d: %v (%s)", r.Seq, out.Kind, out.Reason)
		}
		if err := CheckInvariants(s); err != nil {
			t.Fatalf("after seq %d (%s): %v", r.Seq, r.Event.Type(), err)
		}
	}
	if diff := cmp.Diff(lg.final, s, stateCmp); diff != "" {
		t.Fatalf("refold differs (-generator +refold):\n%s", diff)
	}
	if len(s.Members) != 12 || s.Counters.Applied != uint64(len(lg.recs)) {
		t.Fatalf("%d members, counters %+v", len(s.Members), s.Counters)
	}
	for _, typ := range []events.Type{
		events.TypeMemberClaimed, events.TypeMemberLeft, events.TypeMemberClosing, events.TypeGraceEnded,
		events.TypeMemberRemoved, events.TypePartitionsDeclared, events.TypeWindowClosed,
		events.TypeAssignmentDecided, events.TypePartitionsReleased,
	} {
		if lg.kinds[typ] == 0 {
			t.Errorf("the log has no %s", typ)
		}
	}
	t.Logf("%d records: %v", len(lg.recs), lg.kinds)
}
