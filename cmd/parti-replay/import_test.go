package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/parti-io/parti/internal/natstest"
)

// TestImportRoundTrip loads a recorded history, and its log alone (a
// history with gaps in its sequences), into a server and exports them back:
// the same bytes. state and audit on the imported stream say what they say
// on the file. A second import into the same group is refused.
func TestImportRoundTrip(t *testing.T) {
	logOnly := filepath.Join(t.TempDir(), "log-only.jsonl")
	if code := run(t.Context(), []string{"export", "--file", "testdata/history.jsonl", "--log-only", "--out", logOnly}, newWatchBuffer(), newWatchBuffer()); code != 0 {
		t.Fatal("export --log-only failed")
	}
	for _, in := range []string{filepath.Join("testdata", "history.jsonl"), logOnly} {
		t.Run(filepath.Base(in), func(t *testing.T) {
			url := natstest.Server(t).ClientURL()
			want, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			group := groupOf(t, want)
			stdout, stderr := newWatchBuffer(), newWatchBuffer()
			if code := run(t.Context(), []string{"import", "--file", in, "--server", url}, stdout, stderr); code != 0 {
				t.Fatalf("import exit %d: %s", code, stderr)
			}
			out := filepath.Join(t.TempDir(), "again.jsonl")
			if code := run(t.Context(), []string{"export", "--server", url, "--group", group, "--out", out}, stdout, stderr); code != 0 {
				t.Fatalf("export exit %d: %s", code, stderr)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("export → import → export differs:\n%s", lineDiff(string(want), string(got)))
			}
			for _, cmd := range [][]string{{"state"}, {"audit", "--json"}, {"explain", "p-00"}} {
				fromFile, fromStream := newWatchBuffer(), newWatchBuffer()
				c1 := run(t.Context(), append(cmd, "--file", in), fromFile, stderr)
				c2 := run(t.Context(), append(cmd, "--server", url, "--group", group), fromStream, stderr)
				if c1 != c2 || normalize(fromFile.String()) != normalize(fromStream.String()) {
					t.Errorf("%s on the file (exit %d) and on the imported stream (exit %d) differ:\n%s", cmd[0], c1, c2, lineDiff(normalize(fromFile.String()), normalize(fromStream.String())))
				}
			}
			errb := newWatchBuffer()
			if code := run(t.Context(), []string{"import", "--file", in, "--server", url}, stdout, errb); code != exitUsage || !strings.Contains(errb.String(), "exists") {
				t.Errorf("a second import: exit %d, %q; want 2 saying the stream exists", code, errb)
			}
		})
	}
}

// groupOf returns the group of an export file's first subject.
func groupOf(t *testing.T, file []byte) string {
	t.Helper()
	i := bytes.Index(file, []byte(`"subject":"parti.`))
	if i < 0 {
		t.Fatal("no subject in the file")
	}
	rest := file[i+len(`"subject":"parti.`):]
	return string(rest[:bytes.IndexByte(rest, '.')])
}

// normalize drops the lines that name where a history was read from, and
// what only a live stream has (state's heartbeats).
func normalize(s string) string {
	if i := strings.Index(s, "\nheartbeats ("); i >= 0 {
		s = s[:i+1]
	}
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, `"source"`) || strings.HasPrefix(l, "source: ") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return "line " + strconv.Itoa(i+1) + ":\n- " + x + "\n+ " + y
		}
	}
	return "(same lines)"
}

// TestImportSkipsRecordsWithoutSequence: a made-up record without a
// sequence cannot be stored; import says so and loads the rest.
func TestImportSkipsRecordsWithoutSequence(t *testing.T) {
	url := natstest.Server(t).ClientURL()
	stdout, stderr := newWatchBuffer(), newWatchBuffer()
	if code := run(t.Context(), []string{"import", "--file", "testdata/violations.jsonl", "--server", url}, stdout, stderr); code != 0 {
		t.Fatalf("import exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr.String(), "1 records without a sequence were skipped") || !strings.Contains(stdout.String(), "imported 21 records") {
		t.Errorf("stdout %q, stderr %q; want 21 imported and 1 skipped", stdout, stderr)
	}
}

// TestImportIntoAStoreDirectory: import --embedded writes a new store that
// --embedded reads back as the same history; a store that is not empty is
// refused.
func TestImportIntoAStoreDirectory(t *testing.T) {
	in := filepath.Join("testdata", "history.jsonl")
	want, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "store")
	stdout, stderr := newWatchBuffer(), newWatchBuffer()
	if code := run(t.Context(), []string{"import", "--file", in, "--embedded", dir}, stdout, stderr); code != 0 {
		t.Fatalf("import --embedded exit %d: %s", code, stderr)
	}
	out := filepath.Join(t.TempDir(), "again.jsonl")
	if code := run(t.Context(), []string{"export", "--embedded", dir, "--group", "orders", "--out", out}, stdout, stderr); code != 0 {
		t.Fatalf("export --embedded exit %d: %s", code, stderr)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("import --embedded → export --embedded differs:\n%s", lineDiff(string(want), string(got)))
	}
	errb := newWatchBuffer()
	if code := run(t.Context(), []string{"import", "--file", in, "--embedded", dir}, stdout, errb); code != exitUsage || !strings.Contains(errb.String(), "not empty") {
		t.Errorf("import into a store that is not empty: exit %d, %q; want 2", code, errb)
	}
}
