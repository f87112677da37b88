package replay

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parti-io/parti/events"
)

// groupRecords returns n log records of group, sequences from 1.
func groupRecords(group string, n int) []events.Record {
	base := oddRecords()[0].Time
	out := make([]events.Record, n)
	for i := range out {
		body := []byte(`{"v":1,"t":2,"e":{"id":"worker-0","nonce":"n` + strings.Repeat("x", 40) + `","max_protocol":1}}`)
		out[i] = events.NewRecord(uint64(i+1), base, "parti."+group+".log", nil, body)
	}
	return out
}

func lines(b []byte) []string { return strings.SplitAfter(string(b), "\n") }

// readBoth reads data with Import and, written to a file, with a FileSource
// (the parallel scanner), and returns both errors and the FileSource.
func readBoth(t *testing.T, data string) (importErr, scanErr error, src *FileSource) {
	t.Helper()
	_, importErr = Import(strings.NewReader(data))
	path := filepath.Join(t.TempDir(), "x.jsonl")
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := OpenFile(path, "")
	if err != nil {
		return importErr, err, nil
	}
	return importErr, src.Scan(context.Background(), ScanOptions{}, func(*events.Record) error { return nil }), src
}

func TestSealedExportReadsBack(t *testing.T) {
	// Large enough for the header and the trailer to fall in different
	// chunks of the parallel scanner.
	recs := groupRecords("orders", 9000)
	data := string(export(t, recs))
	if !strings.HasPrefix(data, `{"parti_export":1,"group":"orders"}`+"\n") ||
		!strings.HasSuffix(data, `{"parti_export_end":1,"group":"orders","records":9000}`+"\n") {
		t.Fatalf("export is not sealed: starts %q", data[:60])
	}
	ierr, serr, src := readBoth(t, data)
	if ierr != nil || serr != nil {
		t.Fatalf("an intact sealed export: import %v, scan %v", ierr, serr)
	}
	if !src.Sealed() {
		t.Fatal("Sealed() = false for a file with a header")
	}
	// A partial scan (from a sequence, log only) still counts every line.
	n := 0
	err := src.Scan(context.Background(), ScanOptions{From: 8000, LogOnly: true}, func(*events.Record) error { n++; return nil })
	if err != nil || n != 1001 {
		t.Fatalf("scan from 8000: %d records, %v", n, err)
	}
}

func TestCutOrSplicedExportIsAnError(t *testing.T) {
	orders := lines(export(t, groupRecords("orders", 9000)))
	other := lines(export(t, groupRecords("payments", 3)))
	join := func(parts ...[]string) string {
		var b strings.Builder
		for _, p := range parts {
			for _, l := range p {
				b.WriteString(l)
			}
		}
		return b.String()
	}
	n := len(orders) - 1 // the last element is "" after the final newline
	cases := map[string]struct {
		data string
		want error
	}{
		"cut at the end":    {join(orders[:n-100]), ErrCut},
		"trailer only lost": {join(orders[:n-1]), ErrCut},
		"cut at the start":  {join(orders[1000:]), ErrCut},
		"header only lost":  {join(orders[1:]), ErrCut},
		"cut in the middle": {join(orders[:4000], orders[4100:]), ErrCut},
		"two groups spliced": {
			join(orders[:n-1], other[1:len(other)-2], orders[n-1:]), ErrForeignRecord},
		"two exports concatenated": {join(orders, other), ErrCut},
		"another group under the header": {
			join(orders[:1], other[1:len(other)-2], []string{`{"parti_export_end":1,"group":"orders","records":3}` + "\n"}), ErrForeignRecord},
		"trailer of another group": {
			join(orders[:n-1], []string{`{"parti_export_end":1,"group":"payments","records":9000}` + "\n"}), ErrCut},
		"unsealed files of two groups": {
			join(orders[1:n-1], other[1:len(other)-2]), ErrForeignRecord},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			ierr, serr, _ := readBoth(t, c.data)
			for what, err := range map[string]error{"import": ierr, "scan": serr} {
				if !errors.Is(err, c.want) || !errors.Is(err, ErrFormat) {
					t.Errorf("%s: got %v, want an error wrapping %v and ErrFormat", what, err, c.want)
				}
			}
		})
	}
}

func TestUnsealedExportIsStillRead(t *testing.T) {
	orders := lines(export(t, groupRecords("orders", 50)))
	data := strings.Join(orders[1:len(orders)-2], "")
	ierr, serr, src := readBoth(t, data)
	if ierr != nil || serr != nil {
		t.Fatalf("an export without header and trailer: import %v, scan %v", ierr, serr)
	}
	if src.Sealed() {
		t.Fatal("Sealed() = true for a file without a header")
	}
}

func TestOpenFileChecksTheHeadersGroup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.jsonl")
	if err := os.WriteFile(path, export(t, groupRecords("orders", 3)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFile(path, "payments"); err == nil || !strings.Contains(err.Error(), "holds group orders, not payments") {
		t.Fatalf("OpenFile with another group: %v", err)
	}
	src, err := OpenFile(path, "")
	if err != nil || src.Subjects().Group != "orders" {
		t.Fatalf("OpenFile: %v, %+v", err, src)
	}
}

func TestMalformedSealLines(t *testing.T) {
	for name, line := range map[string]string{
		"no group":       `{"parti_export":1}`,
		"format 2":       `{"parti_export":2,"group":"orders"}`,
		"no count":       `{"parti_export_end":1,"group":"orders"}`,
		"negative count": `{"parti_export_end":1,"group":"orders","records":-1}`,
		"bad group":      `{"parti_export":1,"group":"a.b"}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, ok, err := parseSeal([]byte(line))
			if !ok || err == nil {
				t.Fatalf("parseSeal(%s) = ok %v, err %v; want a clear error", line, ok, err)
			}
		})
	}
	if _, ok, _ := parseSeal(bytes.TrimSpace([]byte(`{"seq":1,"time":"2026-01-02T03:04:05Z","subject":"parti.g.log","body":{"parti_export":1}}`))); ok {
		t.Fatal("a record whose body holds the key is not a seal line")
	}
}
