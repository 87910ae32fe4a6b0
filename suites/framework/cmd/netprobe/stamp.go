package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// stampOptions are "netprobe stamp"'s flags.
type stampOptions struct {
	dur       time.Duration
	readyFile string
	stopFile  string
	match     string
}

// subscribed is how long a started command gets to subscribe to what it
// watches (nft monitor's netlink group) before the ready file says it
// does: it prints nothing until an event comes.
const subscribed = 300 * time.Millisecond

// stamp is "netprobe stamp CMD ARGS...": it runs CMD until -for has
// passed or -stop-file exists and prints each line of its output that
// matches -match as "<this host's time in Unix ns> <line>". The time is
// taken as the line arrives, so a watcher that prints events as they
// happen (nft monitor) times them to within a pipe read, where reading
// the state again and again only bounds the time by the read's length.
// The lines are printed when CMD ends, so that an exec which returns its
// output at the end loses nothing.
func stamp(args []string, o stampOptions, out io.Writer) error {
	re, err := regexp.Compile(o.match)
	if err != nil {
		return fmt.Errorf("-match %q: %w", o.match, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.dur)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stderr = os.Stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	lines := make(chan []byte)
	go func() {
		defer close(lines)
		r := bufio.NewReader(pipe)
		for {
			l, err := r.ReadBytes('\n')
			if len(l) > 0 {
				lines <- strconv.AppendInt(nil, time.Now().UnixNano(), 10)
				lines <- l
			}
			if err != nil {
				return
			}
		}
	}()
	ready := time.After(subscribed)
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	var kept []byte
	for {
		select {
		case at, ok := <-lines:
			if !ok {
				werr := cmd.Wait()
				if _, err := out.Write(kept); err != nil {
					return err
				}
				if ctx.Err() == nil && werr != nil {
					// It ended on its own: it never watched (no nft, no
					// permission), which the caller must not take for a
					// quiet dataplane.
					return fmt.Errorf("%s: %w", args[0], werr)
				}
				return nil
			}
			l := <-lines
			if re.Match(l) {
				kept = append(append(append(kept, at...), ' '), l...)
				if l[len(l)-1] != '\n' {
					kept = append(kept, '\n')
				}
			}
		case <-ready:
			if o.readyFile != "" {
				if err := os.WriteFile(o.readyFile, nil, 0o644); err != nil {
					cancel()
					return err
				}
			}
		case <-poll.C:
			if o.stopFile != "" && exists(o.stopFile) {
				cancel()
			}
		}
	}
}
