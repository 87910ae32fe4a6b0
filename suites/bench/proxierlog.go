package bench

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
)

// A row that fails says what the proxier itself last complained about:
// the bench's own reading of the kernel only says that rules are missing
// (or, when the proxier never wrote any, how the empty table looks), which
// sends the reader the wrong way. A proxier failing every sync logs the
// same error once a second, so repeats fold into one line with a count.
const (
	// logErrorLines is how many distinct error lines a reason carries.
	logErrorLines = 3
	// logLineMax cuts a line (a failed restore can log its whole input).
	logLineMax = 400
)

// klogLine is a klog line: severity, date, time, thread id, then
// "file:line] message". Group 1 is the severity, group 2 what follows
// the time and thread id, the same on every repeat.
var klogLine = regexp.MustCompile(`^([IWEF])\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+ (.*)$`)

// proxierErrors is the log's last n distinct error lines, oldest first,
// each with how often it was logged: klog E and F lines, and a Go panic or
// fatal error. A log without one gives its last n lines as they are, and
// errs false.
func proxierErrors(path string, n int) (lines []string, errs bool, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, err
	}
	lines = strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil, false, nil
	}
	count := map[string]int{}
	var order []string // distinct error lines, by last appearance
	for _, l := range lines {
		key, ok := errorLine(l)
		if !ok {
			continue
		}
		if count[key] > 0 {
			order = slices.DeleteFunc(order, func(s string) bool { return s == key })
		}
		count[key]++
		order = append(order, key)
	}
	if len(order) == 0 {
		return clip(lines[max(0, len(lines)-n):]), false, nil
	}
	out := clip(order[max(0, len(order)-n):])
	for i, key := range order[max(0, len(order)-n):] {
		if c := count[key]; c > 1 {
			out[i] += fmt.Sprintf(" (logged %d times)", c)
		}
	}
	return out, true, nil
}

// errorLine says whether l reports an error and, if so, the part that is
// the same on every repeat (klog's time and thread id dropped).
func errorLine(l string) (string, bool) {
	if m := klogLine.FindStringSubmatch(l); m != nil {
		return m[1] + " " + m[2], m[1] == "E" || m[1] == "F"
	}
	if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
		return l, true
	}
	return "", false
}

// clip is lines, each cut to logLineMax bytes.
func clip(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if len(l) > logLineMax {
			l = strings.ToValidUTF8(l[:logLineMax], "") + " [...]"
		}
		out[i] = l
	}
	return out
}

// proxierSays is what a failed row's reason adds: the proxier's last
// errors from its log, one per line, under the log's path.
func proxierSays(log string) string {
	if log == "" {
		return ""
	}
	lines, errs, err := proxierErrors(log, logErrorLines)
	what := "last errors"
	switch {
	case err != nil:
		return fmt.Sprintf("\nproxier log: %v", err)
	case len(lines) == 0:
		return fmt.Sprintf("\nproxier log %s: empty", log)
	case !errs:
		what = "last log lines (no error logged)"
	}
	return fmt.Sprintf("\nproxier's %s (%s):\n  %s", what, log, strings.Join(lines, "\n  "))
}
