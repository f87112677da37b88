package replaytest

import (
	"fmt"
	"math/rand/v2"
)

// GenerateConfig sizes a generated history.
type GenerateConfig struct {
	// Group is the group's ID (default "bench").
	Group string
	// Members and Partitions size the group (defaults 500 and 100,000).
	Members, Partitions int
	// Records is how many records to generate, at least (default
	// 1,000,000); the last round finishes.
	Records int
	// HeartbeatsPerRound is how many heartbeats of random members each
	// round of churn appends (default 20).
	HeartbeatsPerRound int
	// Seed seeds the choices; the same config gives the same history.
	Seed uint64
}

func (c *GenerateConfig) defaults() {
	if c.Group == "" {
		c.Group = "bench"
	}
	if c.Members <= 0 {
		c.Members = 500
	}
	if c.Partitions <= 0 {
		c.Partitions = 100_000
	}
	if c.Records <= 0 {
		c.Records = 1_000_000
	}
	if c.HeartbeatsPerRound <= 0 {
		c.HeartbeatsPerRound = 20
	}
}

// GenerateStats describes a generated history.
type GenerateStats struct {
	Records, Rounds, Decisions int
	Kinds                      map[string]int
}

// counting counts what an Emitter stores.
type counting struct {
	Emitter
	n int
}

func (c *counting) Emit(subject string, header map[string][]string, body []byte) (uint64, error) {
	c.n++
	return c.Emitter.Emit(subject, header, body)
}

// Generate writes a large, realistic history through em: Members members
// claim at a cold start, the leader declares Partitions partitions (in
// parts), the cold-start decision places them; then rounds of churn until
// Records records: graceful leaves, crashes (a verdict on the heartbeat
// subject, the removal, an emergency decision), restarts inside the grace
// (a takeover with zero moves), closes whose grace ends, each followed by a
// planned join behind a window and a rebalance, every decision followed by
// its sources' releases, and heartbeats throughout. It drives the decider,
// so it takes a while: most of the time goes to decider.Decide on the whole
// partition set, once or twice a round.
func Generate(cfg GenerateConfig, em Emitter) (GenerateStats, error) {
	cfg.defaults()
	ce := &counting{Emitter: em}
	b, err := NewBuilder(cfg.Group, ce)
	if err != nil {
		return GenerateStats{}, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15))
	st := GenerateStats{Kinds: map[string]int{}}
	decide := func() {
		if d := b.Decide(); d != nil {
			st.Decisions++
		}
	}
	for range cfg.Members {
		b.Claim("")
	}
	b.Heartbeats()
	b.Declare(PartitionIDs(cfg.Partitions), "", 0)
	b.CloseWindow(1000)
	decide()
	b.Heartbeats()
	for ce.n < cfg.Records && b.Err() == nil {
		st.Rounds++
		live := b.State.LiveMembers()
		if len(live) < 2 {
			return st, fmt.Errorf("replaytest: generate: %d live members left", len(live))
		}
		// Never the leader: a stable leader keeps the history realistic
		// (leadership changes are the simulator's business).
		m := live[1+rng.IntN(len(live)-1)]
		switch k := rng.IntN(20); {
		case k < 7:
			st.Kinds["leave"]++
			b.Leave(m.ID)
			decide()
		case k < 13:
			st.Kinds["crash"]++
			b.Crash(m.ID, 6000+int64(rng.IntN(500)))
			decide()
		case k < 16:
			st.Kinds["restart"]++
			b.CloseForRestart(m.ID)
			b.Claim(m.ID) // a takeover: zero moves, no join
			for range cfg.HeartbeatsPerRound {
				b.Heartbeat(live[rng.IntN(len(live))].ID)
			}
			continue
		default:
			st.Kinds["grace-end"]++
			b.CloseForRestart(m.ID)
			b.EndGrace(m.ID, 30000)
			decide()
		}
		for range cfg.HeartbeatsPerRound {
			live := b.State.LiveMembers()
			b.Heartbeat(live[rng.IntN(len(live))].ID)
		}
		b.Claim("")
		b.CloseWindow(1000)
		decide()
	}
	st.Records = ce.n
	return st, b.Err()
}
