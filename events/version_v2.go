//go:build partiv2

package events

// MaxVersion is the newest protocol version this build reads and writes.
//
// This file is built only with the tag partiv2: a test-only second version
// of the protocol, so that the upgrade tests run a real fleet of version-1
// processes upgraded, one by one, to processes that speak version 2 (their
// claims say so; the leader raises the group's version once every live
// member speaks it; from then on every envelope carries "v":2, which a
// version-1 build cannot read).
const MaxVersion uint16 = 2
