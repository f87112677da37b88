// Package cli holds what the commands (parti-replay, parti-ctl) share in
// reading their command lines and their terminal.
package cli

import (
	"flag"
	"os"
)

// ParseArgs parses flags and positional arguments in any order ("--" ends
// the flags) and returns the positional ones.
func ParseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// IsTerminal reports whether f (an io.Reader or io.Writer) is a terminal:
// an *os.File on a character device.
func IsTerminal(f any) bool {
	file, ok := f.(*os.File)
	if !ok {
		return false
	}
	fi, err := file.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
