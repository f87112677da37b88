package events

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxIDLen is the longest group or member ID.
const MaxIDLen = 64

// MaxPartitionIDLen is the longest partition ID.
const MaxPartitionIDLen = 256

// ErrInvalidID is wrapped by ValidID's errors.
var ErrInvalidID = fmt.Errorf("events: invalid ID")

// ValidID checks that id is safe in a subject token: 1 to 64 characters of
// [A-Za-z0-9_-].
func ValidID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidID)
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("%w: %q is longer than %d", ErrInvalidID, id, MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q has %q at %d (allowed: A-Z a-z 0-9 _ -)", ErrInvalidID, id, c, i)
		}
	}
	return nil
}

// ValidPartitionID checks a partition ID: 1 to 256 bytes. Partition IDs never
// appear in subjects.
func ValidPartitionID(id string) error {
	if id == "" || len(id) > MaxPartitionIDLen {
		return fmt.Errorf("%w: partition %q must be 1 to %d bytes", ErrInvalidID, id, MaxPartitionIDLen)
	}
	return nil
}

// Subjects names the subjects of one group.
type Subjects struct {
	// Group is the group's ID.
	Group string
	// Prefix is the first token, "parti" by default.
	Prefix string
}

// NewSubjects returns the subject map for group.
func NewSubjects(group string) (Subjects, error) {
	if err := ValidID(group); err != nil {
		return Subjects{}, fmt.Errorf("group: %w", err)
	}
	return Subjects{Group: group, Prefix: "parti"}, nil
}

func (s Subjects) base() string {
	p := s.Prefix
	if p == "" {
		p = "parti"
	}
	return p + "." + s.Group
}

// Log is the group's log subject.
func (s Subjects) Log() string { return s.base() + ".log" }

// Snapshot is the group's snapshot subject.
func (s Subjects) Snapshot() string { return s.base() + ".snap" }

// Heartbeat is the heartbeat subject of one member incarnation.
func (s Subjects) Heartbeat(member string, inc uint64) string {
	return s.base() + ".hb." + member + "." + strconv.FormatUint(inc, 10)
}

// Heartbeats is the wildcard over every heartbeat subject of the group.
func (s Subjects) Heartbeats() string { return s.base() + ".hb.>" }

// All is the wildcard over every subject of the group: the stream's subject.
func (s Subjects) All() string { return s.base() + ".>" }

// SubjectKind classifies a subject of the group.
type SubjectKind int

// Subject kinds.
const (
	SubjectOther SubjectKind = iota
	SubjectLog
	SubjectHeartbeat
	SubjectSnapshot
)

// Parse classifies subject; for a heartbeat subject it returns the member and
// incarnation.
func (s Subjects) Parse(subject string) (kind SubjectKind, member string, inc uint64) {
	b := s.base() + "."
	if !strings.HasPrefix(subject, b) {
		return SubjectOther, "", 0
	}
	rest := subject[len(b):]
	switch {
	case rest == "log":
		return SubjectLog, "", 0
	case rest == "snap":
		return SubjectSnapshot, "", 0
	case strings.HasPrefix(rest, "hb."):
		parts := strings.Split(rest[3:], ".")
		if len(parts) != 2 || ValidID(parts[0]) != nil {
			return SubjectOther, "", 0
		}
		n, err := strconv.ParseUint(parts[1], 10, 64)
		if err != nil {
			return SubjectOther, "", 0
		}
		return SubjectHeartbeat, parts[0], n
	}
	return SubjectOther, "", 0
}
