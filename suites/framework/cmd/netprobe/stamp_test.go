package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Each kept line carries the time it arrived: two lines printed 300 ms
// apart are stamped at least that far apart, and lines not matching are
// dropped.
func TestStampTimesEachLineAsItArrives(t *testing.T) {
	var out bytes.Buffer
	err := stamp([]string{"sh", "-c", "echo add 10.0.0.1; echo delete 10.0.0.9; sleep 0.3; echo add 10.0.0.2"},
		stampOptions{dur: 10 * time.Second, match: "^add "}, &out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], " add 10.0.0.1") || !strings.HasSuffix(lines[1], " add 10.0.0.2") {
		t.Fatalf("kept %q, want the two add lines", lines)
	}
	var at [2]int64
	for i, l := range lines {
		if at[i], err = strconv.ParseInt(strings.Fields(l)[0], 10, 64); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
	}
	if gap := time.Duration(at[1] - at[0]); gap < 250*time.Millisecond {
		t.Errorf("lines printed 300 ms apart stamped %v apart", gap)
	}
}

// A watcher that never ends stops when the stop file appears, after the
// ready file said it was watching, and what it printed is kept.
func TestStampStopsAtTheStopFile(t *testing.T) {
	dir := t.TempDir()
	ready, stop := filepath.Join(dir, "ready"), filepath.Join(dir, "stop")
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		done <- stamp([]string{"sh", "-c", "echo add 10.0.0.1; exec sleep 60"}, stampOptions{dur: time.Minute, readyFile: ready, stopFile: stop, match: "add"}, &out)
	}()
	for !exists(ready) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("stamp did not stop at the stop file")
	}
	if !strings.HasSuffix(strings.TrimSpace(out.String()), " add 10.0.0.1") {
		t.Errorf("output %q lacks the line printed before the stop", out.String())
	}
}

// A watcher that ends on its own failed to watch: an error, never an
// empty success that reads as a dataplane without changes.
func TestStampFailsWhenTheWatcherEndsOnItsOwn(t *testing.T) {
	var out bytes.Buffer
	if err := stamp([]string{"sh", "-c", "echo cannot watch >&2; exit 1"}, stampOptions{dur: 10 * time.Second}, &out); err == nil {
		t.Error("a watcher exiting 1 gave no error")
	}
}
