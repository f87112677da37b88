package faultproxy

import (
	"strings"
	"testing"
)

func TestFilterOpsDropsWholeMessages(t *testing.T) {
	drop := func(subject string) bool { return strings.HasPrefix(subject, "drop.") }
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
