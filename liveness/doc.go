// Package liveness is the pure member-side logic of parti's liveness protocol
// (DESIGN rules 2 and 4), shared by the runtime and the simulator: the lease a
// member acts under, the bookkeeping of its fenced heartbeats, the judge's
// expiry rule, and the timing profiles with their static checks.
//
// Nothing here reads a clock, sleeps, draws random numbers, starts goroutines
// or does I/O; the package is under the same lint as the deterministic core.
// Time arrives as readings of type [time.Duration] taken by the caller from
// one clock that keeps counting through suspend (CLOCK_BOOTTIME on Linux, see
// internal/clock). A reading is only ever compared with readings of the same
// clock on the same process: never with the server's timestamps, never with
// another member's clock. None of the types is safe for concurrent use; the
// runtime drives each from one goroutine, the simulator from its event loop.
//
// # The pieces
//
//   - [Lease]: a member acts on its partitions only while its lease is valid.
//     Each acknowledged heartbeat extends the lease to (the reading when that
//     heartbeat was sent) + lease length; an acknowledgement never shortens it.
//   - [Heartbeater]: the fence of the next heartbeat (the sequence of the last
//     one), and what to do after a refused (10071), in-flight (10164) or
//     timed-out heartbeat: [Heartbeater.Resolve] reads the subject's last
//     message and says expired, adopt, fence on zero, or conflict.
//   - [MayHeartbeat] and [CatchUp]: a member heartbeats only while its fold has
//     caught up, within the expiry, with the newest log sequence it knows of.
//   - [Judge]: the etcd-lessor-like rule. A judge expires its victim only when
//     its own count, started when it last saw the victim's heartbeat (or, for
//     an inherited victim, at its own first acknowledged heartbeat after it
//     started watching), exceeds the expiry, AND its own heartbeats were
//     acknowledged without a gap meanwhile and are healthy now. An outage or a
//     stream-leader election therefore restarts the count instead of expiring
//     the whole fleet.
//   - [Timings]: heartbeat interval, expiry, lease, margin, ack budget and
//     reconnect wait, with [Timings.Validate] enforcing the inequalities that
//     make the guarantee hold, and the [Production], [Fast] and [Test]
//     profiles.
//
// # A worked example
//
// A member's heartbeat loop, in outline (clock is the caller's boot clock):
//
//	t := liveness.Production()                  // validated once at start-up
//	lease := liveness.NewLease(t.Lease)
//	hb := liveness.NewHeartbeater(nonce)
//	judge, _ := liveness.NewJudge(t.JudgeConfig())
//	var lag liveness.CatchUp                    // fed by the tail: Learned, Applied
//
//	// every t.Heartbeat:
//	if !lag.MayHeartbeat(clock.Now(), t.Expiry) { skip: let the judge expire us }
//	sent := clock.Now()
//	seq, err := publish(heartbeat{nonce}, expectLastSequencePerSubject(hb.Prev()))
//	switch {
//	case err == nil:
//		hb.Acked(seq); lease.Acked(sent); judge.OwnAck(sent, clock.Now())
//	default: // 10071, 10164 or a timeout
//		judge.OwnFailure(clock.Now())
//		if out := hb.Resolve(readLastMessage()); out.Stop() {
//			lease.Revoke() // stop acting; rejoin as a new incarnation
//		}
//	}
//
//	// on each message of the victim's heartbeat subject: judge.ObserveVictim(seq, clock.Now())
//	// periodically: if due, _, fence := judge.Due(clock.Now()); due { append verdict fenced on fence }
//	// before acting on a partition: if !lease.Valid(clock.Now()) { stop acting }
//
// See the package examples for runnable versions.
package liveness
