// Package consumer consumes exactly the partitions a parti member owns from a
// JetStream stream, and follows every change of ownership.
//
//	c, err := consumer.Join(ctx, js, parti.Production("shop"), consumer.Config{
//		Stream:  "ORDERS",
//		Subject: "orders.{partition}",
//		Handler: func(ctx context.Context, m *consumer.Msg) error {
//			return apply(ctx, m.Partition, m.Token, m.Data)
//		},
//	})
//	...
//	defer c.Leave(ctx)
//
// Join runs a parti member (as parti.Join does) whose Handler is the helper.
// Each partition's messages are handed to the Handler one at a time, in
// stream order; a message that fails blocks its partition (retried after
// Config.Backoff) and goes to the dead-letter subject, with the reason in its
// headers, once Config.MaxDeliveries attempts failed. A panic in the Handler
// is recovered, counted and treated as a failure.
//
// # Hand-off
//
// When a partition is revoked, the helper stops handing out its messages,
// cancels the handlers' context, waits until every running handler returned
// (at most Config.DrainTimeout: past it the member stops acting, as after a
// crash, and never releases a partition whose handler may still run),
// writes the partition's floor past every message it processed and waits
// for the server's confirmation, and only then lets the member release it.
// The next owner reads the floor and resumes at the first message after it.
// After a graceful change (join, leave, close for a rolling restart) no
// message is handled twice. After a crash, the messages in flight on the
// crashed member are handled again: those handled since its last progress
// record (see Floors), which is about the last Config.CommitInterval
// (20 ms) of its work; with Config.ConfirmEach, only the message being
// handled (at most one per partition).
//
// # Floors
//
// A partition's floor is the stream sequence below which every one of its
// messages was processed. It is one record on its own subject of the floor
// stream, with the fencing token of the owner that wrote it. A new owner
// first reads the floor and writes it back under its own token; every write
// expects the subject's last sequence to be the one its writer last saw. So
// once a partition moved on, a late write of its previous owner (a process
// paused past its lease) fails, and that owner stops consuming the
// partition; the record never goes backwards.
//
// Writing every busy partition's record every CommitInterval costs about
// one write per message when messages are spread over many partitions (a
// partition rarely sees two in one interval). So each member writes, every
// CommitInterval, one progress record on a subject of its own (one per
// Join) listing every floor it moved since the partitions' own records,
// each with its tenure's token; a partition's own record names that
// subject and is rewritten only every 5 s while its floor moves (the
// partition is busy, or its consumer moved past other partitions'
// messages), and always, confirmed, at a hand-off. A new owner reads the
// partition's record, then the progress record it names, and takes the
// progress floor only if it carries the same token (the same tenure). Once
// the new owner wrote the partition's record under its own token, nobody
// reads the old owner's progress for that partition again, so a late write
// there moves no floor anyone relies on; the old owner's next write of the
// partition's record fails on the fence (within 5 s; its lease check
// stops it sooner). Progress records expire an hour after their last write
// and are emptied at a graceful leave. A member holding more partitions
// than one message can list spreads its progress over several records on
// subjects of its own, each within half of the largest message the server
// and the floor stream accept (with the default max_payload of 1 MB, about
// 7,000 partitions of short IDs a record); a partition's entry stays in
// one record for its tenure, the one its own record names.
//
// # Streams and consumers the helper creates
//
// The helper never changes the user's stream. It creates:
//
//   - the floor stream, PARTI_<group>_<stream>_FLOORS (Config.FloorStream),
//     on parti-floor.<floor stream>.>, keeping one message per subject
//     (so its size is bounded by the number of partitions), with the user
//     stream's replicas. Its metadata holds the origin: the floor of a
//     partition that never had one (0, or the stream's last sequence when
//     it was created with Config.StartNew).
//   - per member, ordered, acknowledgement-free consumers on the user's
//     stream (memory storage, one replica, removed by the server 30 s after
//     their member is gone), each over the subjects of up to
//     Config.FiltersPerConsumer (1,024) partitions, starting at the lowest
//     floor among them. Partitions that arrive together share consumers,
//     dealt over them (see the cost model below); a member's consumers are
//     merged once they reached the end of the stream, or when there are far
//     more of them than its partitions need, so a member holds about
//     partitions / FiltersPerConsumer of them.
//   - unless Config.DeadLetter names a subject of yours, a dead-letter stream
//     PARTI_<group>_<stream>_DLQ on parti-dlq.<group>.<stream>.>.
//
// # Why this layout
//
// Measured with nats-server 2.15 on a 2-core machine (one server, and a
// three-server R3 cluster in one process), draining a backlog of 100,000
// small messages over 256 partitions with a handler that returns at once
// (see bench_test.go and BENCHMARKS.md for the commands and the figures):
//
//   - One durable consumer per partition (the obvious layout): 3,000–8,000
//     msg/s with one message in flight per partition; each delivery scans
//     other partitions' messages, each consumer's state is written ten times
//     a second, a stream allows 1,000 consumers by default, and on a
//     cluster each consumer is a raft group (256 took 9–32 s to create).
//   - A work-queue stream sourced from the user's stream, consumed by one
//     consumer per member (the helper's first layout): the work queue keeps
//     a per-partition floor for free, but every message is stored twice,
//     acknowledged and deleted: 0.22–0.31× a plain consumer, 0.13–0.21× on
//     R3.
//   - Acknowledgement-free consumers over the owned partitions' subjects
//     with a floor per partition written in batches (this layout): an
//     acknowledgement-free consumer with 256 filter subjects delivers about
//     2.4× as fast as a plain consumer that acknowledges, and the floors
//     cost one write per partition per CommitInterval. Through the helper:
//     1.1–1.75× a plain consumer on one server, 2.5× on R3. With
//     ConfirmEach every message costs a fenced write and a round trip (the
//     server takes about 40,000 of those a second from 256 writers here):
//     0.06–0.14×, 0.35× on R3.
//
// # The cost model
//
// What a filtered consumer costs the server (nats-server 2.15, file
// storage) decides the layout. To find a consumer's next message the server
// looks in the current message block: when the block holds more messages
// than distinct subjects, it walks the block's subject tree in
// lexicographic order, testing each subject against the consumer's
// filters, until it meets one of the consumer's subjects with messages at
// or after the position it looks from, then scans messages linearly from
// there to the first that matches. So each delivery costs
//
//   - the subjects that sort before the consumer's first subject (the
//     walk), and
//   - the other consumers' messages between two of its own (the scan).
//
// Cutting a member's sorted partitions into consumers of contiguous
// subjects makes its k-th consumer walk past k × FiltersPerConsumer
// subjects for every message. Measured raw (acknowledgement-free ordered
// consumers, 200,000 messages round-robin over the partitions, one server,
// a quiet 2-core machine, one connection for all, see bench/consumer with
// ONLY=raw): 1,024 partitions, four consumers of 256 contiguous subjects
// 40 k msg/s, the same subjects dealt round-robin 496 k; sixteen of 64:
// 24 k cut, 259 k dealt; one consumer of all 1,024: 400 k. 4,096
// partitions: four of 1,024 cut 11 k, dealt 352 k; sixteen of 256 cut 9 k,
// dealt 296 k; one of 4,096 162 k. Memory storage scans linearly and is
// indifferent to the layout.
// Hence the helper deals partitions over its consumers and lets one
// consumer hold up to 1,024.
//
// The scan part does not go away: N members each have at least one
// consumer, and each consumer's scan passes over the messages of every
// other member's partitions, so the server's work for a drain grows with
// the number of members reading at once. What the member itself spends per
// message matters as much: until this was measured, the engine read the
// member's lease clock once per message (Member.Owns: CLOCK_BOOTTIME, a
// system call) under its lock on the delivery goroutine, about 60 % of its
// per-message time, and a goroutine returning from the call on a busy
// machine waited for a processor with the lock held. A valid lease is now
// reused for at most a millisecond, and pulls ask for 2,000 messages
// instead of 500. Whole-process CPU per drained message (server included,
// bench/consumer TRACE=1, 1,024 partitions): 1 member 10–12 µs before, 6–7
// µs after; 4 members 14–18 µs before, 6–7 µs after; the acknowledging
// plain consumer 6–7 µs. In a quick run of the bench afterwards (load 2–3)
// every member count drained at 1.6–2.4× the acknowledging plain
// consumer, 4 members at 1.15–1.21× one member, 16 members at 0.82× one
// member over 1,024 partitions and 1.07× over 4,096 (see BENCHMARKS.md):
// with 16 members the scan costs about 40 % more CPU per message than with
// 4. The member's own partitions' position in the subject order also
// matters: a member whose partitions all sort late walks past everyone
// else's, and a drain ends with its slowest member. The bench drains the
// same backlog with bare ordered consumers too (one connection each, the
// partitions dealt, no helper): 16 of them over 1,024 partitions drained
// at 0.70–0.76× one. That ratio is the server's, and no layout of one or
// more filtered consumers per member changes it; only fewer readers than
// members would. 16 members of the helper drained at 0.78–0.91× one
// member until the committer stopped walking every partition on each
// tick (below), and at 1.08–1.10× after; about half of that change is one
// member over 1,024 partitions using some 15 % more CPU per message since
// (the committer's longer hold of the engine's lock seems to have batched
// deliveries), the 16 members' rate did not change.
//
// A member holding tens of thousands of partitions pays for anything done
// per partition on a timer. The committer walked every partition under the
// engine's lock each CommitInterval: at 60,000 partitions that stalled
// deliveries, the member's consumers fell behind and were replaced over
// and over, and a drain of 200,000 messages ran at 2,200–2,900 msg/s
// (439–908 consumers started, 540,000–660,000 floor writes). The
// partitions that processed something are now kept on a list, and own
// records due are looked for once a second: 54,000 msg/s, 59 consumers,
// 64,000 floor writes (of which 60,000 are the claims), 0.33× the plain
// consumer. The server's subject-tree walk also grows with the subjects in
// a block (above): before this change, one member over 20,000 partitions
// drained at 0.65× the plain consumer and over 40,000 at 0.59×.
//
// Joining is the same story on the control goroutine. It used to look at
// every partition held on each kick, and a member joining over 60,000
// partitions gets a kick per assignment and per floor load: 37 % of the
// bench process's CPU went there, and every partition was consumed
// 24–32 s after the Join began. Now what changes a partition's standing
// (a tenure, a load, a revoke, a lost consumer, an overflow drained) puts
// it on a list that the next kick looks at; partitions loaded while others
// still load wait on a list of their own; the once-a-second tidy tick
// still looks at every partition (and merges consumers). The same join
// takes 5–6 s, most of it the 60,000 floor reads and claims.
//
// On the tail of a live stream (20 k msg/s, 1,024 partitions, 16 members,
// every member and the server in one process in the bench) latency is
// decided by CPU: each member receives about 1,250 msg/s, too few for
// anything to batch, so each message costs a server consumer wake-up, a
// socket write and read, a client dispatch and a handler goroutine per
// member, and the process needs about 1.5× the plain consumer's CPU per
// message. When the machine is busy the queueing that follows shows at
// the p99 for every member alike (publish → stored grows with it: the
// server itself waits for CPU); no consumer is re-created, GC takes about
// 3 %. Per-message costs of the helper therefore matter to the tail: the
// lease-clock system call above was one; writing the progress record with
// encoding/json was another (4 ms and 24,581 allocations for 4,096
// partitions; hand-encoded 0.35 ms, one allocation).
//
// The floors cost one progress record per member per CommitInterval, plus
// one partition record per busy partition every 5 s: on the tail of 20 k
// msg/s over 1,024 partitions and 16 members, about 0.05 writes per
// message rather than one (0.09 when partition records were rewritten
// every second). In a drain those rewrites were what 16 members over 4,096
// partitions lost against one member (0.74× with a second, 0.93–0.96×
// with 5 s). They are most of what the helper still adds to the
// tail: with commits turned off (a CommitInterval of an hour) the process
// used 3.8 s of CPU for the tail's 100,000 messages instead of 5.3–5.6 s,
// about 165 µs per record written (request, reply, flushes, the server's
// store), and the helper's tail p99 was at the plain consumer's (12.9
// against 9.0 ms on a quiet machine, 16 against 18 ms on a busier one).
//
// Ordering holds because one consumer delivers a partition at a time and
// in stream order; a delivery whose consumer sequence skips one (a slow
// client the server cut off) replaces the consumer from where each of its
// partitions got.
//
// # Failures and metrics
//
// A consumer deleted or changed from outside is noticed (by the consumer's
// own error, or by the check every Config.CheckInterval) and replaced from
// where each of its partitions got; nothing is lost or handled twice. A
// permission error stops the helper with ErrPermission (the member leaves,
// so that members allowed to consume take the partitions over). A floor
// that cannot be written at a hand-off stops the member without a release,
// as a drain time-out does. Every failure is counted through Metrics and
// logged; Consumer.Stats returns the counters.
//
// # Modes
//
// Config.ManualAck hands the settling of each message to the handler
// (Msg.Ack, Msg.Nak, from any goroutine); the partition's next message waits
// for it. Config.MaxInFlight bounds the messages handled (or unsettled) at
// once over all partitions, Config.PartitionBuffer those one partition
// holds: past it the partition's further messages are dropped and read
// again once it drained, so a blocked partition neither grows without bound
// nor stalls the others.
package consumer
