// Package partitest runs a parti group on an in-memory log, so that
// applications can unit-test their partition handlers without NATS.
//
// A Group is deterministic and synchronous. Its clock is fake and moves only
// inside Advance, Settle, Join and Leave; its stream keeps one global
// sequence, the last sequence of each subject, honours expected-sequence
// fences and stores batches atomically; one fold of the log subject is shared
// by every member. Each member is the same state machine a parti.Member runs
// (package rawmember), stepped on that fold, and every action it asks for is
// carried out at once. Handler calls happen on the goroutine calling the
// Group, in the order a real member makes them (both drive package
// rawmember's Handoff, and pass one table of contract cases): within a
// change every revocation before any assignment, each in index order and
// with the same reasons, each Assignment's context cancelled
// before its Revoked call, and a partition's release appended only after
// Revoked returned, so its next owner's Assigned always comes later. The kit
// fails the test if two members' Handlers ever hold one partition at once, or
// if the folded state breaks an invariant.
//
// What the kit does not model: network delays, lost acks, stream outages,
// process pauses and heartbeat TTLs. Those belong to the simulator (test/sim)
// and the integration tests; a Group shows what a Handler sees when the
// group works as designed.
//
// # A handler test
//
//	func TestTakeover(t *testing.T) {
//		g := partitest.NewGroup(t, partitest.Options{
//			Partitions: []string{"tenant-1", "tenant-2", "tenant-3", "tenant-4"},
//		})
//		w1, w2 := newWorker(), newWorker() // the application's parti.Handler
//		g.Join("w1", w1)
//		m2 := g.Join("w2", w2)
//		g.Settle() // the cold-start window closes, one decision, Assigned calls
//
//		m2.Crash() // no more heartbeats, no more Handler calls
//		g.Settle() // w1 expires w2 after Timings.Expiry of simulated time
//		if got := w1.Running(); len(got) != 4 {
//			t.Fatalf("w1 runs %v, want all four tenants", got)
//		}
//	}
//
// Settle runs until the group has nothing left to do (see its contract);
// Advance moves the clock by a given amount, to look at the group before an
// expiry or a grace ends. Member.Close followed by a Join with the same ID is
// a rolling restart: the new process takes the partitions over with zero
// moves. Group.Records returns the log, to count decisions and moves.
package partitest
