// Package events defines everything that goes on a parti group's stream: the
// record the fold consumes, the subject map, the versioned envelope and every
// event type with its stable wire code.
//
// This package pins the decisions that are expensive to change later. They are
// written down here once; the rest of the code refers to them.
//
// # Records
//
// The fold consumes a [Record], never a bare body: the stream sequence, the
// server's timestamp (taken from the message metadata; the writer cannot know
// it), the subject, the headers and the body, plus the decoded event. Decoding
// happens once, in projection or replay; decider.Apply only sees records that
// already carry their [Event]. The server time is kept for display and audit
// only: the fold never reads it (DESIGN rule 1).
//
// # Subjects
//
// For a group G ([Subjects]):
//
//	parti.G.log                  every state-defining event (the durable state is a fold of this subject alone)
//	parti.G.hb.<member>.<inc>    heartbeats and verdicts of one member incarnation (per-message TTL; never folded)
//	parti.G.snap                 snapshot chunks: a cache of the fold up to a log sequence N (TTL)
//
// Group and member IDs use the subject-safe character set [A-Za-z0-9_-], 1 to
// 64 characters ([ValidID]). Partition IDs are free-form strings (up to 256
// bytes): they never appear in a subject, decisions refer to partitions by
// index into the declared set.
//
// # The envelope
//
// Every body is JSON: {"v":<protocol version>,"t":<type code>,"e":{...}}. The
// type codes are written out below and never renumbered; renaming a Go type
// never breaks decoding of old history. Decoding garbage returns an error that
// wraps [ErrMalformed] or [ErrUnknownType] (skip it, count it, go on); a
// well-formed envelope of a protocol version newer than [MaxVersion] returns an
// error wrapping [ErrNewerVersion], which a member treats as "stop acting"
// (DESIGN rule 8) rather than as garbage.
//
// # Membership
//
// A process claims an ID with [MemberClaimed] (unfenced, carrying a random
// per-process nonce; an empty ID asks for the lowest free worker slot). The fold
// grants claims in log order: the grant is a fold outcome, not a separate event,
// and it assigns the incarnation number (previous incarnation of that ID + 1). A
// process is an incarnation only if the folded grant names its nonce. A claim
// for an ID whose previous incarnation is still live waits in the fold and is
// granted at the position where that incarnation leaves, closes or is removed.
//
// [MemberLeft] hands partitions off now. [MemberClosing] is close-for-restart:
// the incarnation keeps its ID and partitions until either a new incarnation of
// the same ID is granted (it takes the partitions over with zero moves) or the
// leader appends [GraceEnded] (its partitions are then moved).
//
// # Liveness
//
// Each incarnation appends [Heartbeat]s to its own heartbeat subject, each
// fenced with the expected last sequence of that subject (the previous
// heartbeat) and carrying the nonce. Each member judges the live member before
// it in join order (the first judges the last). A judge that measured, on its
// own clock and with its own heartbeats acked without a gap, more than the
// expiry since the victim's last heartbeat appends an [ExpiryVerdict] on the
// victim's heartbeat subject, fenced on the sequence it saw. Whoever then sees
// a verdict against a still-live incarnation appends [MemberRemoved] to the log
// (unfenced and idempotent: it names the member, the incarnation and the
// verdict's sequence). Heartbeats and verdicts never enter the durable state.
//
// # Partitions, decisions and hand-off
//
// The leader (derived from the durable state: the live member granted first)
// declares the partition set with [PartitionsDeclared] and appends decisions
// with [AssignmentDecided], fenced on the log subject's last sequence so a
// decision lands only on the exact log it was computed from. Decisions are
// deltas: each [Move] names a set of partition indices ([Ranges]), its source
// and its target (member and incarnation). A move from nobody takes effect at
// once; a move from a live member takes effect when the source's
// [PartitionsReleased] (naming its incarnation and the tokens it gives up) or
// the source's removal is folded. No leader is needed to finish a hand-off.
//
// Anything too large for one message (a 100,000-partition declaration, a
// cold-start decision) is split into parts (Part/Parts) published as one atomic
// batch; the fold applies it when the last part arrives, validated against the
// state at the first part's position.
//
// # Fencing tokens
//
// Every ownership carries a [Token]: the log sequence at which it took effect
// and the owner's incarnation. Applications pass it to their own storage, which
// rejects writes carrying an older token.
//
// # Generations
//
// The log is never compacted in place (DESIGN rule 7). A group whose log grew
// too old is migrated to a new group on a new stream whose log starts with a
// [Genesis]: the old log's final fold, with the old log's last sequence and
// the state's hash, so an audit can check it against the old log. Members of
// the new group fold from it and continue; the old stream stays as it was.
//
// # Versions
//
// One number, the protocol version, is carried in every envelope and set on the
// log by [ProtocolVersionSet]. Members state the highest version they support in
// their claim; the leader raises the group's version only once every live
// member supports it.
//
// # Time
//
// Nothing here carries a reading of a clock that the fold compares: spans in
// verdicts and removals are what a judge measured, recorded for audit. Every
// time-dependent outcome (an expiry, a window closing, a grace ending) is
// measured by a live member and appended as an event.
package events
