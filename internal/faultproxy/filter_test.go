package faultproxy

import (
	"strings"
	"testing"
)

func TestFilterOpsDropsWholeMessages(t *testing.T) {
	drop := func(subject string, _ []byte) bool { return strings.HasPrefix(subject, "drop.") }
	in := "PING\r\nPUB keep.a 5\r\nhello\r\nPUB drop.b _INBOX.x 3\r\nbye\r\nHPUB drop.c 12 14\r\nNATS/1.0\r\n\r\nhi\r\nSUB x 1\r\nPUB keep.d 2\r\nok\r\n"
	want := "PING\r\nPUB keep.a 5\r\nhello\r\nSUB x 1\r\nPUB keep.d 2\r\nok\r\n"
	// Fed whole, and fed one byte at a time (operations split across reads).
	out, rest := filterOps([]byte(in), drop)
	if string(out) != want || len(rest) != 0 {
		t.Fatalf("whole: forwarded %q, kept %q", out, rest)
	}
	var got, pending []byte
	for i := range len(in) {
		pending = append(pending, in[i])
		var o []byte
		o, pending = filterOps(pending, drop)
		got = append(got, o...)
	}
	if string(got) != want || len(pending) != 0 {
		t.Fatalf("byte by byte: forwarded %q, kept %q", got, pending)
	}
	if out, _ := filterOps([]byte(in), nil); string(out) != in {
		t.Fatalf("without a filter: forwarded %q", out)
	}
}

func TestFilterOpsSeesThePayload(t *testing.T) {
	var seen []string
	drop := func(subject string, payload []byte) bool {
		seen = append(seen, string(payload))
		return string(payload) == "hello"
	}
	in := "PUB keep.a 5\r\nhello\r\nHPUB keep.c 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
	out, _ := filterOps([]byte(in), drop)
	if want := "HPUB keep.c 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"; string(out) != want {
		t.Fatalf("forwarded %q, want %q", out, want)
	}
	if len(seen) != 2 || seen[0] != "hello" || seen[1] != "NATS/1.0\r\n\r\nhi" {
		t.Fatalf("drop saw payloads %q", seen)
	}
}
