// Package projection is parti's JetStream side: it provisions a group's
// stream, appends events to it (unfenced, fenced, or as one atomic batch),
// tails the log subject with an ordered consumer and folds every record into
// a decider.State, writes and reads snapshots, and watches one heartbeat
// subject for a judge. The pure rules live in decider; this package only
// moves records between the stream and decider.Apply.
//
// # The stream
//
// Provision creates the stream PARTI_<group> over every subject of the group
// (parti.<group>.>) with delete, purge and rollup denied, per-message TTLs
// and atomic batches allowed, and no limit that would drop a log message;
// for an existing stream it checks the settings the server kept and returns
// ErrIncompatibleStream, naming the setting, rather than change it.
//
// # Appending
//
// An Appender encodes every event with events.Encode at its protocol
// version. Append is unfenced (a member's own claims, leaves, releases);
// AppendFenced and AppendBatch land only if the log subject's last sequence
// is the one the caller folded (the leader's decisions and declarations).
// Heartbeat and PublishVerdict are fenced on a heartbeat subject's last
// sequence. A refused fence — JetStream error code 10071 or 10164, matched by
// code — returns an error wrapping ErrConflict. AppendBatch speaks
// JetStream's atomic batch protocol on core NATS (nats.go has no client for
// it): all events land contiguously, or none does.
//
// # Folding
//
// Start loads the newest snapshot (verifying its chunks and hash; on any
// problem it folds from sequence 1), then tails the log subject, and only the
// log subject, with an ordered consumer from LastApplied+1, applying each
// record on one goroutine. Garbage is skipped by decider.Apply and also
// logged and counted. A lost connection or a consumer error resumes from
// LastApplied+1; on every (re)connect the projection checks that the log did
// not go backwards and refolds from 1 if it did, into a fresh state beside
// the one readers see, which it replaces once caught up. CheckTail, called
// at intervals, reads the log's last sequence and replaces a tail that
// stopped delivering. Readers use State (a copy), View (no copy, under a
// read lock), WaitFor, Notify and Stats.
//
// # Migration
//
// The log is never compacted in place. Migrate moves a group whose log has
// grown too old to a new group ID whose stream starts with a genesis
// (events.Genesis) carrying the old log's final fold; the new stream numbers
// its messages after the old one's, so fencing tokens keep increasing. See
// Migrate for the procedure; parti-replay migrate runs it and parti-replay
// audit --from-group checks it.
//
// # A worked example
//
// A member joins, waits for its fold to catch up, and — as the leader —
// declares the partition set fenced on the log it saw:
//
//	if _, err := projection.Provision(ctx, js, projection.StreamConfig{Group: "orders"}); err != nil {
//		return err
//	}
//	subjects, _ := events.NewSubjects("orders")
//	app := projection.NewAppender(js, subjects)
//	p, err := projection.Start(ctx, js, projection.Config{Group: "orders", Logger: logger})
//	if err != nil {
//		return err
//	}
//	defer p.Stop()
//
//	claim, _ := decider.Claim("", nonce, 0)
//	if _, err := app.Append(ctx, claim); err != nil {
//		return err
//	}
//	newest, err := p.Newest(ctx)
//	if err != nil {
//		return err
//	}
//	if err := p.WaitFor(ctx, newest); err != nil { // caught up
//		return err
//	}
//	s := p.State()
//	me := s.GrantedTo(nonce)
//	if me != nil && s.IsLeader(me.ID, me.Incarnation) {
//		parts, _ := decider.Declare(s, me.ID, me.Incarnation, ids, nil, "", 0)
//		evs := make([]events.Event, len(parts))
//		for i, part := range parts {
//			evs[i] = part
//		}
//		_, err := app.AppendBatch(ctx, evs, s.LastSeq)
//		if errors.Is(err, projection.ErrConflict) {
//			// The log moved on: wait for the fold and decide again.
//		}
//	}
//
// # Goroutines and callbacks
//
// A Projection runs one goroutine, which folds, calls Config.OnRecord and
// signals Notify channels; it ends on Stop, when Start's context ends, or
// when the connection is closed (Err). WatchSubject calls its function from
// the consumer's goroutine, one call at a time. Every exported method is safe
// for concurrent use.
package projection
