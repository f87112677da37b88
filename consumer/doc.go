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
// crashed member are handled again: those handled since their partition's
// last floor write, which is about the last Config.CommitInterval (20 ms)
// of its work; with Config.ConfirmEach, only the message being handled (at
// most one per partition).
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
//     Config.FiltersPerConsumer partitions, starting at the lowest floor
//     among them. Partitions that arrive together share a consumer; a
//     member's consumers are merged once they reached the end of the stream,
//     so a member holds about partitions / FiltersPerConsumer of them.
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
// A limit of this layout: the server slows down sharply when several
// consumers with many filter subjects drain the same backlog at once (raw,
// four consumers of 64 subjects together reach a third of what one of 256
// does; sixteen of 256 over 4,096 partitions, 8,000 msg/s). A fleet
// catching up a large backlog therefore reads far slower than one member
// alone; following the tail of a live stream is not affected the same way.
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
