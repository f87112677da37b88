//go:build !partiv2

package events

// MaxVersion is the newest protocol version this build reads and writes.
// Version 1 is the first. (Built with the tag partiv2, for the upgrade
// tests only, it is 2: see version_v2.go.)
const MaxVersion uint16 = 1
