// Package proxierlog reads what a proxier's log (klog, as kube-proxy's
// and ours write it) says went wrong: its last distinct errors, for a
// failed bench row's reason and a failed --cleanup in a switch's report.
// The reader's own view (rules missing, an exit status) sends the user
// the wrong way; the proxier's errors say why.
package proxierlog

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// LineMax cuts a line (a failed restore can log its whole input).
const LineMax = 400

// klogLine is a klog line: severity, date, time, thread id, then
// "file:line] message". Group 1 is the severity, group 2 what follows
// the time and thread id, the same on every repeat.
var klogLine = regexp.MustCompile(`^([IWEF])\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+ (.*)$`)

// Errors is log's last n distinct error lines, oldest first, each with
// how often it was logged (a proxier failing every sync logs the same
// error once a second): klog E and F lines, with the lines klog writes
// below one for a multi-line value (err=<, indented, up to >), and a Go
// panic or fatal error. A log without one gives its last n lines as they
// are, and errs false.
func Errors(log string, n int) (lines []string, errs bool) {
	all := strings.Split(strings.TrimSpace(log), "\n")
	if len(all) == 1 && all[0] == "" {
		return nil, false
	}
	count := map[string]int{}
	var order []string // distinct error lines, by last appearance
	add := func(key string) {
		if count[key] > 0 {
			order = slices.DeleteFunc(order, func(s string) bool { return s == key })
		}
		count[key]++
		order = append(order, key)
	}
	// pending is an error line still taking its continuation lines.
	pending := ""
	for _, l := range all {
		if pending != "" && continuation(l) {
			pending += " " + strings.TrimSpace(l)
			continue
		}
		if pending != "" {
			add(pending)
			pending = ""
		}
		if key, ok := errorLine(l); ok {
			pending = key
		}
	}
	if pending != "" {
		add(pending)
	}
	if len(order) == 0 {
		return clip(all[max(0, len(all)-n):]), false
	}
	out := clip(order[max(0, len(order)-n):])
	for i, key := range order[max(0, len(order)-n):] {
		if c := count[key]; c > 1 {
			out[i] += fmt.Sprintf(" (logged %d times)", c)
		}
	}
	return out, true
}

// continuation says whether l belongs to the klog line above it: klog
// writes a multi-line value indented, closing it with " >".
func continuation(l string) bool {
	return l != "" && (l[0] == ' ' || l[0] == '\t')
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

// clip is lines, each cut to LineMax bytes.
func clip(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if len(l) > LineMax {
			l = strings.ToValidUTF8(l[:LineMax], "") + " [...]"
		}
		out[i] = l
	}
	return out
}
