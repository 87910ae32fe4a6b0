package main

import (
	"path/filepath"
	"testing"
)

// The hold files' handshake works with netprobe alone: a pod whose image
// has no shell tools still tells a ready file, a stop file and cleans up.
func TestTheFileHandshakeNeedsNothingButNetprobe(t *testing.T) {
	dir := t.TempDir()
	ready, stop := filepath.Join(dir, "x.ready"), filepath.Join(dir, "x.stop")
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"exists", ready}, 1},
		{[]string{"touch", ready}, 0},
		{[]string{"touch", ready}, 0}, // again: an existing file is fine
		{[]string{"exists", ready}, 0},
		{[]string{"exists", ready, stop}, 1},
		{[]string{"rm", ready, stop}, 0}, // stop never existed: fine
		{[]string{"exists", ready}, 1},
		{[]string{"touch", filepath.Join(dir, "no-such-dir", "f")}, 1},
		{[]string{"remove", ready}, 2},
		{[]string{"exists"}, 2},
	} {
		if got := fileOp(c.args); got != c.want {
			t.Errorf("netprobe file %v = %d, want %d", c.args, got, c.want)
		}
	}
}
