// Package sim is parti's deterministic simulation: the real member state
// machine (rawmember), the real fold (decider) and the real liveness rules
// (liveness), driven over a modelled JetStream stream in simulated time. It is
// pure: no NATS, no real clock, no goroutines, one seeded math/rand/v2 source
// per run, no map order reaching an outcome, so a seed replays exactly. (It
// imports the root package for the Handler and Assignment types of scripts
// only; it opens no connection.)
//
// # The model
//
// The stream ([stream]) has one global sequence, the log subject's records
// (every record goes through the wire encoding), and one subject per member
// incarnation holding heartbeats (with a per-message TTL counted in server
// time) and verdicts (no TTL). Fenced appends compare against the subject's
// last live sequence (0 once every message expired); a batch lands whole or
// not at all, fenced on its first message. Server time is real time plus a
// skew that steps forwards and backwards. A heartbeat message also keeps its
// sender's reading when it sent it (no heartbeat body carries it): only a
// driver broken on purpose to date heartbeats by the victim's clock reads it,
// as one dating them by the server's clock reads the timestamps; it hands
// the member the mapped time as its reading (judgeclock.go). A stall (a stream-leader election)
// accepts nothing: each request arriving meanwhile is dropped or held and
// stored when the stall ends, usually after its client gave up.
//
// Each process ([proc]) has its own rawmember.Member, its own decider.State
// folded from the log with a lag of its own (in order; fold stalls of
// seconds), its own clock (offset + rate × real time, rates within ±1 %),
// and an inbox through which the driver delivers the stream's answers (after
// network delays; some lost, then the client's timeout reports although the
// append may have landed), the timeouts, and the messages of the subject it
// watches. A paused process neither steps nor receives; what it believed
// when it last checked stays its belief until it runs again. A process may
// be isolated (its requests fail or vanish, its tail stops, and comes back
// later), crash (nothing more from it, its requests in flight still land),
// close for a restart (and restart with the same ID inside the grace or
// after it), leave, rejoin after being expired, or join anew; leaders crash
// right after sending a fenced append; the declared partition set changes
// (on every member, or on the leader only).
//
// The application of each process acts on what Owned returns, finishes a
// revoked partition for up to 200 ms before it lets go (LetGo), stops at
// once when the lease is gone or the member closes, and writes every step,
// with its fencing token, to one token-checking store (highest token per
// partition; lower ones rejected).
//
// A run alternates chaos phases (faults injected at the rates of [Options])
// and calm phases (none), which start once every running fault ended.
//
// # The checks, after every step
//
//   - no two processes believe they own a partition at once (Owned on each
//     one's clock, frozen while paused), and no two applications act on one;
//   - decider.CheckInvariants on the authoritative fold and every member's;
//   - every member folds every record to the same outcome as the
//     authoritative fold, and (sampled) its state hashes like the
//     authoritative state at the same sequence;
//   - (sampled) refolding the log from scratch, and from a snapshot taken at
//     a random record, gives the authoritative state;
//   - a fenced leader append (decision, declaration, window, grace) always
//     applies where it landed;
//   - after a quiet period of window + expiry + a decision round + slack
//     (one more expiry and round per member the fold holds that no process
//     backs, and the grace while one is closing), every partition is owned by
//     a live member whose process believes it owns it;
//   - a restart inside the grace in a settled group, with no other change,
//     moves none of the restarting member's partitions;
//   - no healthy member (never paused, isolated, crashed or fold-stalled,
//     every heartbeat acknowledged unless the stream was stalled) is expired;
//   - in a calm phase, every member whose process is gone (crashed) is
//     removed within k × (expiry + 2 × (heartbeat + ack budget)) of its
//     death, its grant or the phase's start, whichever is latest, k being
//     the number of such members (adjacent ones are judged in turn): 5 s
//     for one with the Test timings;
//   - after the quiet period, no running process still waits for its claim
//     unless another running process holds its ID: a same-ID restart is
//     granted once the old incarnation is gone, never stuck;
//   - a nonce is granted to one incarnation only, ever (no ghost of a past
//     incarnation's replayed claim);
//   - the store rejects no write; beyond the promise (pauses of seconds),
//     where beliefs do overlap, it accepts no write of a superseded owner once
//     the current owner wrote.
//
// # Scripts
//
// A [Script] drives one world from a test instead of random faults: Join a
// process (with a parti.Handler its application calls), Leave, Close,
// SetPartitions, and Settle (run until every process's application holds
// what the authoritative fold gives its member, nothing in flight), each
// wait bounded in simulated time. It turns every fault off and keeps every
// check that does not wait for a quiet period. TestContractTable runs the
// handler contract table (internal/contracttest) on it, the table
// parti.Member and partitest pass.
//
// # Running
//
//	go test ./test/sim                         # TestSim within a ~45 s budget, the broken variants
//	go test ./test/sim -run 'TestSim$' -seed N # one seed, with the trace on failure (or SIM_SEED=N)
//	SIM_FULL=1 go test ./test/sim              # make sim: thousands of seeds, no budget
//	go test -race -run Race ./test/sim         # a few seeds concurrently under the race detector
//
// SIM_STEPS sets the steps per seed, SIM_BUDGET the budget, SIM_TRACE the
// number of events a failure report shows.
package sim
