// Package replay rebuilds a parti group's state from its history and
// explains it: the state at any sequence or server time, the ownership
// history of one partition, the difference between two points, an audit of
// the whole history against the invariants, and a what-if refold under
// another strategy or window. The command parti-replay is a thin shell over
// it.
//
// # Sources
//
// A history is a [Source]: a live stream ([StreamSource], from [Connect],
// or from [NewConn] on a connection made elsewhere, such as the in-process
// server parti-replay --embedded starts on a copy of a stopped store), an
// export file ([FileSource], from [OpenFile]) or records in memory
// ([MemorySource]). A stream is read with ephemeral consumers of replay's
// own, one bounded pull request at a time: replay never appends, a scan
// stops at the stream's last sequence when it started unless it follows,
// and every wait on the server is bounded (ConnectOptions.Timeout; past it
// an error wrapping [ErrTimeout]). The library does not link nats-server. The fold is decider.Apply, the function every
// member runs, over the log subject's records in order; heartbeats,
// verdicts and snapshot chunks are read where an analysis needs them (the
// audit, tail, export) and never folded.
//
// # Generations
//
// A group migrated from an older one (projection.Migrate, DESIGN rule 7)
// starts its log with a genesis (events.Genesis) carrying the old log's fold:
// the fold restores it, [Audit] reports it in [AuditReport].Genesis, and,
// given the old generation's history as [AuditOptions].Previous, refolds
// that up to the genesis's sequence and checks that the hashes match and
// that the old log did not go on after it.
//
// # The export format
//
// [Export] and [Writer] write one JSON object per line:
//
//	{"seq":12,"time":"2026-01-02T03:04:05.123456789Z","subject":"parti.orders.log","headers":{...},"body":{"v":1,"t":2,"e":{...}}}
//
// with the body embedded when it is valid JSON and in "body_b64" otherwise:
// everything the fold reads, so a file replays exactly like its stream.
// Export → [Import] → Export is byte-identical. Import only reads.
//
// # Speed
//
// Decoding dominates a replay (events.Decode is encoding/json, a few µs a
// record), so sources decode on every core and hand records to the fold in
// order on the caller's goroutine. The audit follows each partition with a
// few slices indexed by partition, and each member's partitions in lists,
// so that a record costs work in proportion to what it can change. Checking
// the decider's invariants on the whole state costs about 1 µs per
// partition; the audit checks incrementally after every record, and in full
// as [AuditOptions].CheckEvery says.
//
// # Example
//
//	src, err := replay.OpenFile("orders.jsonl", "")
//	if err != nil { ... }
//	rep, err := replay.Audit(ctx, src, replay.AuditOptions{MaxUnowned: 30 * time.Second})
//	if err != nil { ... }
//	if !rep.Clean {
//		rep.WriteText(os.Stdout)
//	}
//
//	st, err := replay.StateAt(ctx, src, replay.AtSeq(1200))
//	ex, err := replay.Explain(ctx, src, "tenant-42")
package replay
