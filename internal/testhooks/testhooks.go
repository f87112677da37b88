// Package testhooks reaches into a parti.Member for the module's own tests
// (the integration tests of package test) without widening parti's API: what
// only a test needs to read is not an exported method. Package parti sets
// the hooks in its init, so they are set in any program that imports parti;
// being internal, they cannot be reached from outside the module.
package testhooks

import "time"

// LeaseDeadline returns member m's lease deadline as a reading of its clock
// (Config.Clock): it may act until the clock passes it. m must be a
// *parti.Member.
var LeaseDeadline func(m any) time.Duration

// LiveContexts returns how many assignments member m holds and how many of
// their Contexts were made (something asked for Done or a Value): they are
// made lazily. m must be a *parti.Member.
var LiveContexts func(m any) (held, live int)
