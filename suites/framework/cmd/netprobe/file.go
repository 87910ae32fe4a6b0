package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// fileOp is "netprobe file exists|touch|rm|cat PATH...": the hold and
// stream files' handshake (framework.HoldFiles) and a batch's result file
// done by netprobe itself, so a
// pod's image needs nothing but netprobe (the netserver image has no
// shell, no test, touch or rm). It returns the exit status: 0 done (exists:
// every path exists), 1 not (exists) or failed, 2 a bad call.
func fileOp(args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: netprobe file exists|touch|rm|cat PATH...")
		return 2
	}
	for _, p := range args[1:] {
		var err error
		switch args[0] {
		case "exists":
			_, err = os.Stat(p)
		case "touch":
			now := time.Now()
			if err = os.Chtimes(p, now, now); errors.Is(err, fs.ErrNotExist) {
				err = os.WriteFile(p, nil, 0o644)
			}
		case "cat":
			var b []byte
			if b, err = os.ReadFile(p); err == nil {
				_, err = os.Stdout.Write(b)
			}
		case "rm":
			if err = os.Remove(p); errors.Is(err, fs.ErrNotExist) {
				err = nil
			}
		default:
			fmt.Fprintf(os.Stderr, "netprobe file: unknown operation %q: want exists, touch, rm or cat\n", args[0])
			return 2
		}
		if err != nil {
			fmt.Println(err)
			return 1
		}
	}
	return 0
}
