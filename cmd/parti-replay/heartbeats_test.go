package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/parti-io/parti/replay/replaytest"
)

// TestStateShowsHeartbeatAges runs state against a live stream: each live
// member's last heartbeat with its age; with an expiry shorter than their
// age, every member is flagged and the group's silence is named.
func TestStateShowsHeartbeatAges(t *testing.T) {
	url, _, b := liveServer(t, t.TempDir())
	b.Claim("worker-0")
	b.Claim("worker-1")
	b.Heartbeats()
	b.Declare(replaytest.PartitionIDs(4), "sticky", 0)
	b.CloseWindow(100)
	b.Decide()
	if b.Err() != nil {
		t.Fatal(b.Err())
	}
	args := []string{"state", "--server", url, "--group", "orders"}

	stdout, stderr := newWatchBuffer(), newWatchBuffer()
	if code := run(t.Context(), append(args, "--expiry", "1h"), stdout, stderr); code != 0 {
		t.Fatalf("state exit %d: %s", code, stderr)
	}
	out := stdout.String()
	for _, want := range []string{"heartbeats (expiry 1h0m0s", "worker-0/1  seq ", "worker-1/1  seq "} {
		if !strings.Contains(out, want) {
			t.Errorf("state lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "STALE") || strings.Contains(out, "accepting writes") {
		t.Errorf("fresh heartbeats flagged:\n%s", out)
	}

	stdout = newWatchBuffer()
	if code := run(t.Context(), append(args, "--expiry", "1ns"), stdout, stderr); code != 0 {
		t.Fatalf("state exit %d: %s", code, stderr)
	}
	out = stdout.String()
	if strings.Count(out, "STALE: older than the expiry") != 2 || !strings.Contains(out, "is the stream accepting writes?") {
		t.Errorf("heartbeats older than the expiry not flagged:\n%s", out)
	}

	stdout = newWatchBuffer()
	if code := run(t.Context(), append(args, "--expiry", "1ns", "--json"), stdout, stderr); code != 0 {
		t.Fatalf("state --json exit %d: %s", code, stderr)
	}
	var js struct {
		Phase      string `json:"phase"`
		Heartbeats struct {
			Members []struct {
				Member string `json:"member"`
				Stale  bool   `json:"stale"`
			} `json:"members"`
			Silent bool `json:"silent"`
		} `json:"heartbeats"`
	}
	if err := json.Unmarshal([]byte(stdout.String()), &js); err != nil {
		t.Fatal(err)
	}
	if js.Phase == "" || len(js.Heartbeats.Members) != 2 || !js.Heartbeats.Members[0].Stale || !js.Heartbeats.Silent {
		t.Errorf("state --json: %+v", js)
	}
}
