package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/parti-io/parti/projection"
	"github.com/parti-io/parti/replay/replaytest"
)

// TestMigrateThenAudit migrates a live group with the CLI: refused while the
// group has live members, done once they closed, refused again into the
// now non-empty stream; then audit --from-group checks the genesis against
// the old log.
func TestMigrateThenAudit(t *testing.T) {
	url, _, b := liveServer(t, t.TempDir())
	replaytest.Scenario(b)
	if b.Err() != nil {
		t.Fatal(b.Err())
	}
	ctx := t.Context()
	migrate := []string{"migrate", "--server", url, "--group", "orders", "--to", "orders-g2", "--by", "alice", "--note", "test"}
	_, stderr, code := runCLI(ctx, migrate...)
	if code != exitUsage || !strings.Contains(stderr, "live members") {
		t.Fatalf("migrating a live group: exit %d, stderr %q", code, stderr)
	}
	for _, m := range b.State.LiveMembers() {
		b.CloseForRestart(m.ID)
	}
	if b.Err() != nil {
		t.Fatal(b.Err())
	}
	stdout, stderr, code := runCLI(ctx, append(migrate, "--json", "--chunk-bytes", "700")...)
	if code != exitOK {
		t.Fatalf("migrate: exit %d\n%s%s", code, stdout, stderr)
	}
	var res projection.MigrateResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	if res.UpTo != b.State.LastSeq || res.Parts < 2 || res.ToStream != "PARTI_orders-g2" {
		t.Fatalf("migrate result %+v, the old log ends at %d", res, b.State.LastSeq)
	}
	_, stderr, code = runCLI(ctx, migrate...)
	if code != exitUsage || !strings.Contains(stderr, "not empty") {
		t.Fatalf("migrating into a stream with records: exit %d, stderr %q", code, stderr)
	}
	stdout, stderr, code = runCLI(ctx, "audit", "--server", url, "--group", "orders-g2", "--from-group", "orders")
	if code != exitOK || !strings.Contains(stdout, "matches stream PARTI_orders on") || !strings.Contains(stdout, "by alice (test); applied") {
		t.Fatalf("audit of the new generation: exit %d\n%s%s", code, stdout, stderr)
	}
	t.Log(stdout)
}
