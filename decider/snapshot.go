package decider

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Snapshot encodes s canonically (JSON with sorted keys) and returns the bytes
// and their hash. A snapshot is a cache of the fold up to s.LastSeq: a reader
// checks the sequence and the hash and can always refold instead. It fails with
// ErrBusy in the middle of a multi-part event.
func Snapshot(s *State) (data []byte, hash string, err error) {
	if s.partial != nil {
		return nil, "", ErrBusy
	}
	data, err = json.Marshal(s)
	if err != nil {
		return nil, "", fmt.Errorf("decider: snapshot: %w", err)
	}
	return data, Hash(data), nil
}

// Hash returns the hash that identifies snapshot bytes.
func Hash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}

// Restore decodes a snapshot, checks its hash and the state's invariants.
func Restore(data []byte, hash string) (*State, error) {
	if hash != "" && Hash(data) != hash {
		return nil, fmt.Errorf("decider: restore: hash mismatch")
	}
	s := New()
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("decider: restore: %w", err)
	}
	if s.Members == nil {
		s.Members = map[string]*Member{}
	}
	if s.LastInc == nil {
		s.LastInc = map[string]uint64{}
	}
	//parti:unordered rejects a null member; which one is named when several are null does not matter
	for id, m := range s.Members {
		if m == nil {
			// Decoded bytes are input: a null member would crash the
			// index below (a snapshot or genesis whose hash matches is
			// not necessarily one this package wrote).
			return nil, fmt.Errorf("decider: restore: member %q is null", id)
		}
	}
	s.rebuildIndex()
	if err := CheckInvariants(s); err != nil {
		return nil, fmt.Errorf("decider: restore: %w", err)
	}
	return s, nil
}
