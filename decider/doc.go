// Package decider is the pure core of a parti group: the fold of the log
// into a State, and the commands that compute the events a member may append.
//
// Every member folds the same log with Apply and so holds the same State;
// nothing here reads a clock, talks to NATS, starts a goroutine or lets map
// order reach an output, so a State is a function of the log alone and
// parti-replay rebuilds any past one by folding a prefix.
//
// # The fold
//
// Apply takes one record of the log subject and returns its Outcome:
// Applied; Partial (one part of a multi-part declaration, decision or
// genesis, held until its last part); Ignored (a well-formed event that does
// not apply at its position, such as one about an incarnation that is gone);
// Rejected (a decision invalid at its position, recorded in the state);
// Skipped (garbage: undecodable, unknown type); or Newer (a record of a newer
// protocol, after which a member stops acting). The fold is total: no record
// can make it fail. CheckInvariants returns every violated invariant of a
// State (join order, ownership, moves, tokens); the tests and the simulator
// run it after every record. It is built from CheckPartition (one
// partition), CheckMember and CheckMembers (the membership), which replay's
// audit runs after each record on what the record changed, so both report
// the same invariants with the same messages.
//
// # The state
//
// A State holds the granted incarnations in join order (Members, Order),
// the declared partition set (Partitions, DeclVersion) and, per partition,
// its Ownership: owner, fencing token and the target of a move in flight.
// The leader is derived from the state (Leader, IsLeader): the first live
// member in join order. So is each member's judge (Victim: the ring of live
// and leaving members), the group's Phase and each member's view of what it
// owns (Owned).
//
// # Commands
//
// Claim, Leave, CloseForRestart, Release, Declare, CloseWindow, EndGrace,
// Remove, Operator and SetProtocol check their preconditions against a
// State and return the event to append, or an error wrapping a sentinel
// (ErrNotMember, ErrInvalidCommand, ...). Decide returns the leader's next
// AssignmentDecided (nil when nothing is to be done), computed by the
// group's strategy (package strategy) and fenced on the sequence it was
// computed from; SplitDecision cuts a large one into the parts of one
// atomic batch. Snapshot and Restore encode a State and restore it after
// checking its hash and invariants; NewGenesis starts a new-generation log
// from one.
//
// The shell (package parti's Member, package rawmember's state machine,
// partitest, the simulator) appends what these commands return with
// JetStream's expected-last-sequence fence, so two leaders that fold the
// same prefix can never both land a decision.
package decider
