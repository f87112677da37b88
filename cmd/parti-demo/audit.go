package main

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/parti-io/parti/replay"
)

// audit reads the group's whole stream with the replay package (the same
// fold the members run), checks the history against the invariants and
// returns the report and whether it is clean.
func audit(ctx context.Context, d *demo) (string, bool, error) {
	src, err := replay.NewStreamSource(ctx, d.js, d.group)
	if err != nil {
		return "", false, err
	}
	rep, err := replay.Audit(ctx, src, replay.AuditOptions{MaxUnowned: 10 * time.Second})
	if err != nil {
		return "", false, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "6. audit of the whole history (parti-replay audit):\n")
	if err := rep.WriteText(&b); err != nil {
		return "", false, err
	}
	verdict := "CLEAN"
	if !rep.Clean {
		verdict = "VIOLATIONS FOUND"
	}
	fmt.Fprintf(&b, "\naudit verdict: %s\n", verdict)
	return b.String(), rep.Clean, nil
}
