package cli

import (
	"flag"
	"io"
	"slices"
	"testing"
)

func TestParseArgsAnyOrder(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  []string
		v    bool
	}{
		{[]string{"a", "-v", "b"}, []string{"a", "b"}, true},
		{[]string{"-v", "a"}, []string{"a"}, true},
		{[]string{"a", "--", "-v"}, []string{"a", "-v"}, false},
		{nil, nil, false},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		v := fs.Bool("v", false, "")
		pos, err := ParseArgs(fs, tc.args)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if !slices.Equal(pos, tc.pos) || *v != tc.v {
			t.Errorf("%q: got %q v=%v, want %q v=%v", tc.args, pos, *v, tc.pos, tc.v)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := ParseArgs(fs, []string{"a", "-nope"}); err == nil {
		t.Error("an unknown flag after a positional argument was accepted")
	}
}

func TestIsTerminalOnlyForFiles(t *testing.T) {
	if IsTerminal(io.Discard) {
		t.Error("io.Discard called a terminal")
	}
}
