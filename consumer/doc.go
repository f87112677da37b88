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
// confirms the acknowledgements with the server, and only then lets the
// member release it. The next owner resumes at the partition's first
// unacknowledged message. After a graceful change (join, leave, close for a
// rolling restart) no message is handled twice; after a crash, only the
// messages that were in flight on the crashed member (handled, their
// acknowledgement not yet confirmed: at most one per partition by default) are
// handled again.
//
// # Streams and consumers the helper creates
//
// The helper creates streams and consumers of its own; it never changes the
// user's stream:
//
//   - a work-queue stream, PARTI_<group>_<stream> (Config.WorkQueue), that
//     sources the user's stream through Config.SourceFilter, with the user
//     stream's replicas and storage. A message leaves it when it is
//     acknowledged, so what it holds is exactly what is not processed yet:
//     the first message of a partition in it is the partition's first
//     unacknowledged message, whoever held the partition before.
//   - per member, one durable pull consumer on the work queue per shard of
//     its partitions (<member ID>_<n>, Config.FiltersPerConsumer partitions
//     each), whose filter subjects are the owned partitions' subjects.
//     Consumer state is kept in memory: the work queue is the record. When
//     the owned set changes, only the shards it touches are rebuilt: their
//     handlers drain, their filters are updated and they are reset to the
//     start of the work queue. A shard left with no partition is parked on a
//     subject that has no messages rather than deleted. A consumer of a
//     member that is gone (crashed, expired) is deleted by the member that
//     takes over its partitions.
//   - unless Config.DeadLetter names a subject of yours, a dead-letter stream
//     PARTI_<group>_<stream>_DLQ on parti-dlq.<group>.<stream>.>.
//
// # Why this layout
//
// Measured with nats-server 2.15 on a 2-core machine (one server and a
// three-server R3 cluster in one process; see bench_test.go for the
// commands), draining a backlog of small messages over 256 partitions:
//
//   - One durable consumer per partition on the user's stream (the obvious
//     layout) delivers each message through a filtered read that scans the
//     interleaved messages of every other partition under a lock of the
//     stream's block, and writes each consumer's state to disk ten times a
//     second: 3,000–8,000 msg/s with one message in flight per partition,
//     35,000–46,000 with 32–128 prefetched, 3,000 at 4,096 partitions, 1,500
//     (R3, with creation time-outs) against 200,000–240,000 for one plain
//     consumer (90,000 on R3). The server also caps a stream at 1,000
//     consumers by default, and on a cluster each consumer is a raft group.
//   - One consumer per member with the owned partitions as filter subjects,
//     on the user's stream, is fast (0.87× a plain consumer) but keeps one
//     acknowledgement floor per member: a partition that moves cannot resume
//     at its own first unacknowledged message, so a crash would replay or
//     lose messages.
//   - A work queue sourced from the user's stream, consumed by one consumer
//     per member (shard), keeps a per-partition floor for free (what is left
//     is what is unacknowledged) and needs no consumer per partition. This is
//     the layout used. Through the helper (one member, a handler that returns
//     at once): 36,000–53,000 msg/s with confirmed acknowledgements and
//     45,000–63,000 with AsyncAck on one server (0.22–0.31× a plain
//     consumer), 14,000 and 22,000 on R3 (0.13× and 0.21×), 7,000–8,000 at
//     4,096 partitions (0.05×). It falls well short of the 0.8× target: every
//     message is stored a second time and deleted when acknowledged, and
//     each partition has one message in flight. That is the price of a
//     per-partition floor that survives crashes.
//
// A graceful hand-off pauses a moved partition for the old owner's drain
// (its handlers, then an update and a reset of its consumer), the member's
// release, and the new owner's update and reset: with 5 ms handlers, 64
// partitions and three members on one 2-core machine, 20–120 ms at the
// median on one server and 0.2–0.9 s on R3 (noisy: servers, members and
// handlers share the two cores), plus up to a quarter of the heartbeat
// interval that parti's member currently waits before appending a release.
//
// The server checks a consumer's filter subjects pairwise when it is created
// or updated, so a member's partitions are sharded over consumers of at most
// Config.FiltersPerConsumer filters (4,096 partitions on one consumer: about
// 1–2 s per change; 256 per consumer: tens of milliseconds).
//
// # Failures and metrics
//
// A consumer deleted or changed from outside is noticed (by the consumer's
// own error, or by the check every Config.CheckInterval) and rebuilt; the
// work queue being the record, nothing is lost or handled twice. A
// permission error stops the helper with ErrPermission (the member leaves,
// so that members allowed to consume take the partitions over). Every
// failure is counted through Metrics and logged; Consumer.Stats returns the
// counters.
//
// # Modes
//
// Config.ManualAck hands the settling of each message to the handler
// (Msg.Ack, Msg.Nak, from any goroutine); the partition's next message waits
// for it. Config.MaxInFlight bounds the messages handled (or unsettled) at
// once over all partitions, Config.Prefetch those delivered to the member and
// not yet settled, Config.PartitionBuffer those one partition holds.
// Config.AsyncAck acknowledges without waiting for the server (faster; the
// acknowledgements are confirmed before any hand-off, but after a crash more
// than one message per partition may be handled again).
package consumer
