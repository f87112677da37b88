// Package parti coordinates a fleet of workers that share partitions, on NATS
// JetStream: every partition has exactly one owner, owners move as little as
// possible when the fleet changes, a rolling restart moves nothing, and a
// crashed worker's partitions are taken over within seconds.
//
// Every join, leave, expiry and assignment decision is an event in one
// JetStream stream; each member folds the same log with the same pure
// function (package decider) and so holds the same state. The leader is
// derived from that state and its decisions are fenced on the log position
// they were computed from. parti-replay rebuilds any past state from the same
// log.
//
// # Embedding
//
//	m, err := parti.Join(ctx, js, parti.Config{
//		Group:      "orders",
//		Partitions: tenants,
//		Handler: parti.HandlerFuncs{
//			OnAssigned: func(a parti.Assignment) { go work(a.Context, a.Partition, a.Token) },
//			OnRevoked:  func(a parti.Assignment, why parti.RevokeReason) { waitStopped(a.Partition) },
//		},
//	})
//	...
//	<-ctx.Done() // ctx bounded joining only: the member still runs
//	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
//	defer cancel()
//	err = m.Close(closeCtx) // restart: keep the ID and partitions for the grace
//
// The Handler is called from one goroutine, revocations before assignments.
// A partition's release is appended only after Revoked returned, so the next
// owner starts after this one stopped. Each Assignment carries a fencing
// token (the log sequence at which the ownership took effect and the
// member's incarnation); storage that rejects writes carrying a lower token
// than it has seen is safe even when a process pauses for longer than the
// lease margin.
//
// # Guarantees
//
// No two members act on one partition at once while process pauses and
// clock-rate errors stay below Timings.Margin: a member acts only while its
// lease (timed from the send time of its last acknowledged heartbeat, on a
// clock that counts through suspend) is valid, and a judge can expire it only
// after Timings.Expiry > Lease + Margin of silence measured on its own clock.
// Beyond that, fencing tokens are the guarantee.
package parti
