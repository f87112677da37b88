package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"

	"github.com/parti-io/parti/events"
	"github.com/parti-io/parti/projection"
	"github.com/parti-io/parti/replay"
)

// migrateCmd is the one command that writes: it starts a new group's stream
// (projection.Migrate); the old group's stream is only read.
var migrateCmd = &command{
	name:    "migrate",
	summary: "parti-replay migrate: start a new-generation group from the group's final state.",
	details: `
A group's log is never compacted in place: when it has grown too old, the
group moves to a new group ID whose stream starts from the old log's final
state. migrate folds the whole log of --group, then creates the stream of
--to (numbering its messages after the old stream's last sequence, so fencing
tokens keep increasing) and appends a genesis record: the folded state, the
old log's last sequence and the state's hash. It refuses when the old group
still has live or leaving members (unless --allow-live), when the new group's
stream already holds records, and when the old log moves while it runs. The
old stream is only read and stays whole, as the archive of the old generation.

The procedure:
  1. close every member of the old group for a restart (Member.Close): each
     keeps its ID and partitions for the grace, and the old log stops;
  2. parti-replay migrate --group OLD --to NEW;
  3. start the members with Config.Group NEW and the same IDs: each takes its
     partitions back with zero moves (the restart rule);
  4. parti-replay audit --group NEW --from-group OLD checks that the genesis
     carries exactly the old log's fold.
Members of the new generation must run a build that knows the genesis.

The whole migration is bounded by six times --timeout (a minute by default).

Exit status: 0 migrated, 2 refused, timed out, usage, connection or write
error.`,
	examples: []string{
		"parti-replay migrate --server nats://localhost:4222 --group orders --to orders-g2 --by alice --note 'log older than 3 years'",
	},
	stream: true,
	flags: func(fs *flag.FlagSet, o *options) {
		fs.StringVar(&o.to, "to", "", "the new generation's group `ID` (required; its stream must not exist or be empty)")
		fs.StringVar(&o.by, "by", "", "who migrates, recorded in the genesis")
		fs.StringVar(&o.note, "note", "", "why, recorded in the genesis")
		fs.BoolVar(&o.allowLive, "allow-live", false, "migrate although the old group has live or leaving members (they are expired in the new generation and their partitions move)")
		fs.IntVar(&o.replicas, "replicas", 0, "the new stream's replicas (0: the old stream's)")
		fs.IntVar(&o.chunkBytes, "chunk-bytes", 0, "the state bytes per genesis part (0: 512 KiB)")
	},
	do: func(ctx context.Context, e *env) int {
		o := e.o
		if e.conn == nil || o.embedded != "" {
			return usageError(e.stderr, e.name, errors.New("migrate writes a new stream on a live server: give --server or --context, not --file or --embedded"))
		}
		if o.to == "" {
			return usageError(e.stderr, e.name, errors.New("--to is required: the new generation's group ID"))
		}
		if err := events.ValidID(o.to); err != nil {
			return usageError(e.stderr, e.name, fmt.Errorf("--to: %v", err))
		}
		if o.replicas < 0 || o.replicas > 5 || o.chunkBytes < 0 {
			return usageError(e.stderr, e.name, errors.New("--replicas must be 0 to 5 and --chunk-bytes not negative"))
		}
		// migrate folds with the library's projection, not a replay read:
		// its whole run is bounded instead, by six times --timeout.
		ctx, cancel := context.WithTimeout(ctx, 6*o.timeout)
		defer cancel()
		res, err := projection.Migrate(ctx, e.conn.JetStream(), projection.MigrateConfig{
			From: o.group, To: o.to, By: o.by, Note: o.note, AllowLive: o.allowLive,
			Replicas: o.replicas, ChunkBytes: o.chunkBytes, Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			if res != nil && res.GenesisFirst != 0 {
				fmt.Fprintf(e.stderr, "parti-replay migrate: the genesis was appended to %s at seq %d\n", res.ToStream, res.GenesisFirst)
			}
			return e.fail(err)
		}
		if o.json {
			return e.writeJSON(res)
		}
		t := &strings.Builder{}
		fmt.Fprintf(t, "migrated group %s (%s) to %s (%s)\n", res.FromGroup, res.FromStream, res.ToGroup, res.ToStream)
		fmt.Fprintf(t, "old log: %d records folded, up to seq %d; state hash %s (%d bytes)\n", res.Records, res.UpTo, res.Hash, res.Bytes)
		fmt.Fprintf(t, "genesis: seq %d", res.GenesisFirst)
		if res.Parts > 1 {
			fmt.Fprintf(t, "..%d (%d parts, one atomic batch)", res.GenesisLast, res.Parts)
		}
		fmt.Fprintf(t, "; the new fold applied it\n")
		fmt.Fprintf(t, "carried: %d partitions, %d members", res.Partitions, len(res.Members))
		if len(res.Members) > 0 {
			fmt.Fprintf(t, " (%s)", strings.Join(res.Members, ", "))
		}
		fmt.Fprintf(t, "\nnext: start the members with group %s and their IDs, then\n  parti-replay audit --group %s --from-group %s\n", res.ToGroup, res.ToGroup, res.FromGroup)
		if _, err := fmt.Fprint(e.stdout, t.String()); err != nil {
			return e.fail(err)
		}
		return exitOK
	},
}

// previousSource opens the previous generation's history for audit
// --from-group (on the audited stream's connection) or --from-file.
func previousSource(ctx context.Context, e *env) (replay.Source, int) {
	o := e.o
	switch {
	case o.fromGroup != "" && o.fromFile != "":
		return nil, usageError(e.stderr, e.name, errors.New("--from-group and --from-file exclude each other"))
	case o.fromFile != "":
		src, err := replay.OpenFile(o.fromFile, "")
		if err != nil {
			return nil, e.fail(err)
		}
		warnUnsealed(e, src)
		return src, exitOK
	case o.fromGroup != "":
		if err := events.ValidID(o.fromGroup); err != nil {
			return nil, usageError(e.stderr, e.name, fmt.Errorf("--from-group: %v", err))
		}
		if e.conn == nil {
			return nil, usageError(e.stderr, e.name, errors.New("--from-group reads a stream on the audited stream's server: give --from-file with --file"))
		}
		src, err := e.conn.Source(ctx, o.fromGroup)
		if err != nil {
			return nil, e.fail(err)
		}
		return src, exitOK
	}
	return nil, exitOK
}
