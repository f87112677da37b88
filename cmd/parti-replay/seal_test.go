package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/parti-io/parti/internal/natstest"
)

// writeLines writes lines (each with its newline) to a new file.
func writeLines(t *testing.T, name string, lines []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func fileLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	l := strings.SplitAfter(string(b), "\n")
	return l[:len(l)-1] // "" after the last newline
}

// TestCutOrSplicedFileIsRefused: audit --file, state --file, import and
// export --file refuse an export cut at its end or in its middle, and a file
// spliced from two groups' exports, naming the line; import publishes
// nothing and export writes no file. Before
// exports were sealed, the cut file audited CLEAN as if it were the whole.
func TestCutOrSplicedFileIsRefused(t *testing.T) {
	orders := fileLines(t, historyFile)
	g2 := fileLines(t, g2File)
	n := len(orders)
	cases := map[string]struct {
		lines []string
		want  string
	}{
		"cut at the end":    {orders[:n/2], "trailer is missing"},
		"cut in the middle": {append(append([]string{}, orders[:n/3]...), orders[n/3+5:]...), "the file holds"},
		"two groups spliced": {append(append(append([]string{}, orders[:n-1]...), g2[1:len(g2)-1]...), orders[n-1]),
			`a record of group "orders-g2" in an export of group orders`},
		"two exports concatenated": {append(append([]string{}, orders...), g2...), "files spliced"},
	}
	url := natstest.Server(t).ClientURL()
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			path := writeLines(t, "cut.jsonl", c.lines)
			out := filepath.Join(t.TempDir(), "again.jsonl")
			for _, cmd := range [][]string{{"audit", "--file", path}, {"state", "--file", path}, {"import", "--file", path, "--server", url}, {"export", "--file", path, "--out", out}} {
				stdout, stderr := newWatchBuffer(), newWatchBuffer()
				code := run(t.Context(), cmd, stdout, stderr)
				if code != exitUsage || !strings.Contains(stderr.String(), c.want) || !strings.Contains(stderr.String(), "cut or spliced") {
					t.Errorf("%s: exit %d, stderr %q, stdout %q; want exit %d naming %q", cmd[0], code, stderr, stdout, exitUsage, c.want)
				}
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("export of a refused file wrote %s (%v)", out, err)
			}
		})
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	for name := range js.StreamNames() {
		t.Errorf("import of a refused file created stream %s", name)
	}
}

// TestUnsealedFileIsReadWithAWarning: an export of an older build (no
// header, no trailer) audits as before, with a warning on stderr.
func TestUnsealedFileIsReadWithAWarning(t *testing.T) {
	orders := fileLines(t, historyFile)
	path := writeLines(t, "old.jsonl", orders[1:len(orders)-1])
	sealed, unsealed := newWatchBuffer(), newWatchBuffer()
	errSealed, errUnsealed := newWatchBuffer(), newWatchBuffer()
	c1 := run(t.Context(), []string{"audit", "--file", historyFile}, sealed, errSealed)
	c2 := run(t.Context(), []string{"audit", "--file", path}, unsealed, errUnsealed)
	if c1 != c2 || normalize(sealed.String()) != normalize(unsealed.String()) {
		t.Fatalf("audit of the sealed file (exit %d) and of the same records unsealed (exit %d) differ:\n%s", c1, c2, lineDiff(normalize(sealed.String()), normalize(unsealed.String())))
	}
	if strings.Contains(errSealed.String(), "warning") || !strings.Contains(errUnsealed.String(), "no export header and trailer") {
		t.Fatalf("warnings: sealed %q, unsealed %q", errSealed, errUnsealed)
	}
}
