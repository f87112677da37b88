package events

import "fmt"

// Type is an event's stable wire code. Codes are written out, never derived
// from Go type names and never renumbered or reused.
type Type uint16

// The wire codes. Log events are 1–99, heartbeat-subject events 100–149,
// snapshot-subject events 150–199.
const (
	TypeProtocolVersionSet Type = 1
	TypeMemberClaimed      Type = 2
	TypeMemberLeft         Type = 3
	TypeMemberClosing      Type = 4
	TypeGraceEnded         Type = 5
	TypeMemberRemoved      Type = 6
	TypePartitionsDeclared Type = 7
	TypeWindowClosed       Type = 9
	TypeAssignmentDecided  Type = 10
	TypePartitionsReleased Type = 11
	TypeOperatorAction     Type = 12
	TypeGenesis            Type = 13

	TypeHeartbeat     Type = 100
	TypeExpiryVerdict Type = 101

	TypeSnapshotChunk Type = 150
)

var typeNames = map[Type]string{
	TypeProtocolVersionSet: "protocol-version-set",
	TypeMemberClaimed:      "member-claimed",
	TypeMemberLeft:         "member-left",
	TypeMemberClosing:      "member-closing",
	TypeGraceEnded:         "grace-ended",
	TypeMemberRemoved:      "member-removed",
	TypePartitionsDeclared: "partitions-declared",
	TypeWindowClosed:       "window-closed",
	TypeAssignmentDecided:  "assignment-decided",
	TypePartitionsReleased: "partitions-released",
	TypeOperatorAction:     "operator-action",
	TypeGenesis:            "genesis",
	TypeHeartbeat:          "heartbeat",
	TypeExpiryVerdict:      "expiry-verdict",
	TypeSnapshotChunk:      "snapshot-chunk",
}

// String returns the event type's readable name, as printed by parti-replay.
func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type(%d)", uint16(t))
}

// TypeByName returns the type whose String is name.
func TypeByName(name string) (Type, bool) {
	//parti:unordered names are unique: at most one type matches
	for t, n := range typeNames {
		if n == name {
			return t, true
		}
	}
	return 0, false
}

// Event is one of the concrete event types of this package. The set is closed:
// only this package can add to it.
type Event interface {
	// Type returns the event's wire code.
	Type() Type
	isEvent()
}

// ProtocolVersionSet sets the group's protocol version: every member writes at
// this version from here on. The leader raises it only once every live member
// has claimed support for it.
type ProtocolVersionSet struct {
	Version uint16 `json:"version"`
	By      string `json:"by,omitempty"`
}

// MemberClaimed is a process's request to join: an unfenced claim of an ID
// (empty: the lowest free worker slot) carrying the process's random nonce. The
// fold grants claims in log order and numbers the incarnation.
type MemberClaimed struct {
	ID          string `json:"id,omitempty"`
	Nonce       string `json:"nonce"`
	MaxProtocol uint16 `json:"max_protocol"`
	// Labels ("key=value", sorted, see ValidLabels) and Capacity (0 means
	// 1) place the member for the placement strategy.
	Labels   []string `json:"labels,omitempty"`
	Capacity uint32   `json:"capacity,omitempty"`
}

// MemberLeft is a graceful leave: the incarnation's partitions are handed off
// now and it stops counting as live.
type MemberLeft struct {
	Member      string `json:"member"`
	Incarnation uint64 `json:"inc"`
}

// MemberClosing is close-for-restart: the incarnation keeps its ID and its
// partitions until a new incarnation of the same ID is granted (zero moves) or
// GraceEnded is folded.
type MemberClosing struct {
	Member      string `json:"member"`
	Incarnation uint64 `json:"inc"`
}

// GraceEnded ends a closing incarnation's restart grace: the leader measured
// the grace on its own clock. Its partitions then move.
type GraceEnded struct {
	Member      string `json:"member"`
	Incarnation uint64 `json:"inc"`
	SpanMillis  int64  `json:"span_ms,omitempty"`
}

// Removal reasons for MemberRemoved.
const (
	ReasonExpired  = "expired"  // a judge's verdict
	ReasonForced   = "forced"   // an operator's force-expire
	ReasonProtocol = "protocol" // the member met a newer protocol version and stopped
)

// MemberRemoved records that an incarnation is gone because of a verdict (or an
// operator's force-expire). It is appended unfenced by whoever first sees the
// verdict; it is idempotent: a removal of an incarnation that is not live is
// ignored by the fold.
type MemberRemoved struct {
	Member      string `json:"member"`
	Incarnation uint64 `json:"inc"`
	Reason      string `json:"reason"`
	VerdictSeq  uint64 `json:"verdict_seq,omitempty"`
	Judge       string `json:"judge,omitempty"`
	SpanMillis  int64  `json:"span_ms,omitempty"`
}

// PartitionsDeclared declares the group's partition set (version Version). A
// large set is split into Parts messages published as one atomic batch; the
// fold applies the declaration when part Parts-1 arrives right after parts
// 0..Parts-2 of the same version.
type PartitionsDeclared struct {
	Version uint64   `json:"version"`
	Part    int      `json:"part,omitempty"`
	Parts   int      `json:"parts,omitempty"`
	IDs     []string `json:"ids"`
	// Weights is empty (every weight 1) or parallel to IDs.
	Weights  []uint32 `json:"weights,omitempty"`
	Strategy string   `json:"strategy,omitempty"`
	By       string   `json:"by,omitempty"`
	// Classes are the constraint classes (repeated in every part); ClassOf
	// is empty (no partition constrained) or parallel to IDs: the index
	// into Classes of each partition's class.
	Classes []Class  `json:"classes,omitempty"`
	ClassOf []uint32 `json:"class_of,omitempty"`
}

// WindowClosed ends a join window. Windows open as a pure consequence of a
// planned join (or the cold start); the leader measures the window on its own
// clock (or sees every expected member join) and appends WindowClosed. The next
// decision then rebalances. Code 8 is reserved (never reused).
type WindowClosed struct {
	By         string `json:"by,omitempty"`
	SpanMillis int64  `json:"span_ms,omitempty"`
}

// Decision reasons.
const (
	DecideColdStart  = "cold-start"
	DecideRebalance  = "rebalance"
	DecideEmergency  = "emergency"
	DecideDeclared   = "declared"
	DecideOperator   = "operator"
	DecideGraceEnded = "grace-ended"
)

// AssignmentDecided is a decision: a delta of moves computed by the leader on
// the log up to sequence BasedOn and fenced on it. A large decision is split
// into Parts messages of one atomic batch; the fold validates it at the first
// part and applies it at the last.
type AssignmentDecided struct {
	Generation uint64 `json:"gen"`
	BasedOn    uint64 `json:"based_on"`
	Leader     string `json:"leader"`
	LeaderInc  uint64 `json:"leader_inc"`
	Strategy   string `json:"strategy,omitempty"`
	Reason     string `json:"reason"`
	Part       int    `json:"part,omitempty"`
	Parts      int    `json:"parts,omitempty"`
	Moves      []Move `json:"moves"`
}

// Move moves the partitions Parts from From (empty: unowned) to To. A move from
// a live member completes when From releases or is removed.
type Move struct {
	Parts   Ranges `json:"p"`
	From    string `json:"from,omitempty"`
	FromInc uint64 `json:"from_inc,omitempty"`
	To      string `json:"to"`
	ToInc   uint64 `json:"to_inc"`
}

// Released is one partition given up, with the token of the ownership given up.
type Released struct {
	Partition uint32 `json:"p"`
	Token     uint64 `json:"token"`
}

// PartitionsReleased is a source member's release of partitions it was asked
// to move. The fold ignores any entry whose incarnation or token does not match
// the current ownership.
type PartitionsReleased struct {
	Member      string     `json:"member"`
	Incarnation uint64     `json:"inc"`
	Released    []Released `json:"released"`
}

// Operator actions.
const (
	OpDrain       = "drain"        // move every partition off a member, keep it live
	OpCordon      = "cordon"       // no new partitions for a member
	OpUncordon    = "uncordon"     // undo cordon and drain
	OpPause       = "pause"        // stop rebalancing (emergencies still re-own orphans)
	OpResume      = "resume"       // resume rebalancing
	OpForceExpire = "force-expire" // the named incarnation is expired through a verdict
	OpMove        = "move"         // move one partition to a member
)

// OperatorAction is an operator's command, kept on the log so the audit shows
// who did what.
//
// A force-expire names the incarnation (Incarnation) it is meant for: the
// fold marks that incarnation forced (no other is hit), and it is removed the
// way an expiry is, through a verdict on its heartbeat subject and a removal
// appended once its lease can no longer be valid. A force-expire without an
// incarnation (records written before incarnations were named) removes
// whichever incarnation holds the ID at once, as it always did.
type OperatorAction struct {
	Action string `json:"action"`
	Member string `json:"member,omitempty"`
	// Incarnation is the member's incarnation a force-expire is for (0:
	// unnamed, the old behaviour).
	Incarnation uint64 `json:"inc,omitempty"`
	Partition   string `json:"partition,omitempty"`
	Target      string `json:"target,omitempty"`
	By          string `json:"by,omitempty"`
	Note        string `json:"note,omitempty"`
}

// Genesis starts a new-generation log from the final state of an older one
// (DESIGN rule 7: compacting a very old log means migrating the group to a
// new-generation stream that starts from a snapshot). It is the first record
// of the new group's log subject, written once by an operator's migration
// (projection.Migrate, parti-replay migrate), never by a member.
//
// State is decider.Snapshot's encoding of the old log's fold up to log
// sequence UpTo, and Hash is decider.Hash of the whole encoding: the fold
// restores it only if the hash and the state's invariants check, and an
// audit can refold the old log up to UpTo and compare. A large state is cut
// into Parts messages published as one atomic batch, each carrying a slice
// of State in order (Part 0, 1, ...); every part repeats the other fields.
// The new stream starts its sequences after the old stream's last one, so
// fencing tokens (log sequences) keep increasing across generations.
type Genesis struct {
	// FromGroup and FromStream name the old generation: its group ID and
	// stream.
	FromGroup  string `json:"from_group"`
	FromStream string `json:"from_stream"`
	// UpTo is the old log's last sequence folded into State.
	UpTo uint64 `json:"up_to"`
	// Hash identifies the whole encoded state (decider.Hash).
	Hash  string `json:"hash"`
	Part  int    `json:"part,omitempty"`
	Parts int    `json:"parts,omitempty"`
	State []byte `json:"state"`
	// By and Note say who migrated the group, and why.
	By   string `json:"by,omitempty"`
	Note string `json:"note,omitempty"`
}

// Heartbeat is a member incarnation's heartbeat, on its own heartbeat subject,
// fenced on the previous heartbeat's sequence. Applied is the log sequence the
// member had folded when it sent it.
type Heartbeat struct {
	Nonce   string `json:"n"`
	Applied uint64 `json:"a,omitempty"`
}

// ExpiryVerdict is a judge's verdict on the victim's heartbeat subject, fenced
// on the sequence the judge last saw there, with no TTL.
type ExpiryVerdict struct {
	Member      string `json:"member"`
	Incarnation uint64 `json:"inc"`
	Judge       string `json:"judge"`
	JudgeInc    uint64 `json:"judge_inc"`
	LastSeen    uint64 `json:"last_seen"`
	SpanMillis  int64  `json:"span_ms"`
	// Forced is the log sequence of the operator's force-expire this verdict
	// carries out (0 for a judge's own verdict). A forced verdict is not
	// followed by the removal at once: whoever sees it measures the expiry on
	// its own clock from then, so the victim's lease has run out first.
	Forced uint64 `json:"forced,omitempty"`
}

// SnapshotChunk is one chunk of a snapshot of the durable state folded up to
// log sequence UpTo; Hash identifies the whole encoded state. Snapshots are a
// cache: a reader checks UpTo and Hash and can always refold instead.
type SnapshotChunk struct {
	UpTo  uint64 `json:"up_to"`
	Hash  string `json:"hash"`
	Part  int    `json:"part"`
	Parts int    `json:"parts"`
	Data  []byte `json:"data"`
}

func (*ProtocolVersionSet) isEvent() {}
func (*MemberClaimed) isEvent()      {}
func (*MemberLeft) isEvent()         {}
func (*MemberClosing) isEvent()      {}
func (*GraceEnded) isEvent()         {}
func (*MemberRemoved) isEvent()      {}
func (*PartitionsDeclared) isEvent() {}
func (*WindowClosed) isEvent()       {}
func (*AssignmentDecided) isEvent()  {}
func (*PartitionsReleased) isEvent() {}
func (*OperatorAction) isEvent()     {}
func (*Genesis) isEvent()            {}
func (*Heartbeat) isEvent()          {}
func (*ExpiryVerdict) isEvent()      {}
func (*SnapshotChunk) isEvent()      {}

// Type implements Event.
func (*ProtocolVersionSet) Type() Type { return TypeProtocolVersionSet }

// Type implements Event.
func (*MemberClaimed) Type() Type { return TypeMemberClaimed }

// Type implements Event.
func (*MemberLeft) Type() Type { return TypeMemberLeft }

// Type implements Event.
func (*MemberClosing) Type() Type { return TypeMemberClosing }

// Type implements Event.
func (*GraceEnded) Type() Type { return TypeGraceEnded }

// Type implements Event.
func (*MemberRemoved) Type() Type { return TypeMemberRemoved }

// Type implements Event.
func (*PartitionsDeclared) Type() Type { return TypePartitionsDeclared }

// Type implements Event.
func (*WindowClosed) Type() Type { return TypeWindowClosed }

// Type implements Event.
func (*AssignmentDecided) Type() Type { return TypeAssignmentDecided }

// Type implements Event.
func (*PartitionsReleased) Type() Type { return TypePartitionsReleased }

// Type implements Event.
func (*OperatorAction) Type() Type { return TypeOperatorAction }

// Type implements Event.
func (*Genesis) Type() Type { return TypeGenesis }

// Type implements Event.
func (*Heartbeat) Type() Type { return TypeHeartbeat }

// Type implements Event.
func (*ExpiryVerdict) Type() Type { return TypeExpiryVerdict }

// Type implements Event.
func (*SnapshotChunk) Type() Type { return TypeSnapshotChunk }

// newEvent returns a zero event of type t, or nil for an unknown code.
func newEvent(t Type) Event {
	switch t {
	case TypeProtocolVersionSet:
		return &ProtocolVersionSet{}
	case TypeMemberClaimed:
		return &MemberClaimed{}
	case TypeMemberLeft:
		return &MemberLeft{}
	case TypeMemberClosing:
		return &MemberClosing{}
	case TypeGraceEnded:
		return &GraceEnded{}
	case TypeMemberRemoved:
		return &MemberRemoved{}
	case TypePartitionsDeclared:
		return &PartitionsDeclared{}
	case TypeWindowClosed:
		return &WindowClosed{}
	case TypeAssignmentDecided:
		return &AssignmentDecided{}
	case TypePartitionsReleased:
		return &PartitionsReleased{}
	case TypeOperatorAction:
		return &OperatorAction{}
	case TypeGenesis:
		return &Genesis{}
	case TypeHeartbeat:
		return &Heartbeat{}
	case TypeExpiryVerdict:
		return &ExpiryVerdict{}
	case TypeSnapshotChunk:
		return &SnapshotChunk{}
	}
	return nil
}
