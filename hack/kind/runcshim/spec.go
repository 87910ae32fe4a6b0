package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// runcCmd is what the shim needs from a runc command line.
type runcCmd struct {
	sub     string // create, run, exec, ...
	bundle  string // create/run: the bundle directory (default ".")
	process string // exec: the process.json file
}

// globalWithValue are runc's global flags that take a value; the
// subcommand is the first word that is neither one of them nor its value.
var globalWithValue = map[string]bool{"--root": true, "--log": true, "--log-format": true, "--criu": true, "--rootless": true}

func parseArgs(args []string) (runcCmd, error) {
	var c runcCmd
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			break
		}
		if globalWithValue[a] {
			i++
		}
	}
	if i >= len(args) {
		return c, nil
	}
	c.sub = args[i]
	rest := args[i+1:]
	switch c.sub {
	case "create", "run":
		c.bundle = "."
		if v, ok := flagValue(rest, "--bundle", "-b"); ok {
			c.bundle = v
		}
	case "exec":
		c.process, _ = flagValue(rest, "--process", "-p")
	}
	if (c.sub == "create" || c.sub == "run") && c.bundle == "" {
		return c, fmt.Errorf("runc %s: empty --bundle", c.sub)
	}
	return c, nil
}

// flagValue finds a flag given as "--f v", "--f=v", "-f v" or "-f=v".
func flagValue(args []string, names ...string) (string, bool) {
	for i := 0; i < len(args); i++ {
		if args[i] == "--" {
			break
		}
		for _, n := range names {
			if args[i] == n && i+1 < len(args) {
				return args[i+1], true
			}
			if v, ok := strings.CutPrefix(args[i], n+"="); ok {
				return v, true
			}
		}
	}
	return "", false
}

// capSet holds capability numbers.
type capSet map[int]bool

// boundingSet is this process's capability bounding set: what any child
// may hold at most.
func boundingSet() capSet {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return nil
			}
			set := capSet{}
			for n := 0; n < 64; n++ {
				if mask&(1<<n) != 0 {
					set[n] = true
				}
			}
			return set
		}
	}
	return nil
}

// capNumbers maps the names an OCI spec uses to capability numbers; a name
// not listed here is left alone.
var capNumbers = map[string]int{
	"CAP_CHOWN": unix.CAP_CHOWN, "CAP_DAC_OVERRIDE": unix.CAP_DAC_OVERRIDE,
	"CAP_DAC_READ_SEARCH": unix.CAP_DAC_READ_SEARCH, "CAP_FOWNER": unix.CAP_FOWNER,
	"CAP_FSETID": unix.CAP_FSETID, "CAP_KILL": unix.CAP_KILL, "CAP_SETGID": unix.CAP_SETGID,
	"CAP_SETUID": unix.CAP_SETUID, "CAP_SETPCAP": unix.CAP_SETPCAP,
	"CAP_LINUX_IMMUTABLE": unix.CAP_LINUX_IMMUTABLE, "CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE,
	"CAP_NET_BROADCAST": unix.CAP_NET_BROADCAST, "CAP_NET_ADMIN": unix.CAP_NET_ADMIN,
	"CAP_NET_RAW": unix.CAP_NET_RAW, "CAP_IPC_LOCK": unix.CAP_IPC_LOCK, "CAP_IPC_OWNER": unix.CAP_IPC_OWNER,
	"CAP_SYS_MODULE": unix.CAP_SYS_MODULE, "CAP_SYS_RAWIO": unix.CAP_SYS_RAWIO,
	"CAP_SYS_CHROOT": unix.CAP_SYS_CHROOT, "CAP_SYS_PTRACE": unix.CAP_SYS_PTRACE,
	"CAP_SYS_PACCT": unix.CAP_SYS_PACCT, "CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN,
	"CAP_SYS_BOOT": unix.CAP_SYS_BOOT, "CAP_SYS_NICE": unix.CAP_SYS_NICE,
	"CAP_SYS_RESOURCE": unix.CAP_SYS_RESOURCE, "CAP_SYS_TIME": unix.CAP_SYS_TIME,
	"CAP_SYS_TTY_CONFIG": unix.CAP_SYS_TTY_CONFIG, "CAP_MKNOD": unix.CAP_MKNOD,
	"CAP_LEASE": unix.CAP_LEASE, "CAP_AUDIT_WRITE": unix.CAP_AUDIT_WRITE,
	"CAP_AUDIT_CONTROL": unix.CAP_AUDIT_CONTROL, "CAP_SETFCAP": unix.CAP_SETFCAP,
	"CAP_MAC_OVERRIDE": unix.CAP_MAC_OVERRIDE, "CAP_MAC_ADMIN": unix.CAP_MAC_ADMIN,
	"CAP_SYSLOG": unix.CAP_SYSLOG, "CAP_WAKE_ALARM": unix.CAP_WAKE_ALARM,
	"CAP_BLOCK_SUSPEND": unix.CAP_BLOCK_SUSPEND, "CAP_AUDIT_READ": unix.CAP_AUDIT_READ,
	"CAP_PERFMON": unix.CAP_PERFMON, "CAP_BPF": unix.CAP_BPF,
	"CAP_CHECKPOINT_RESTORE": unix.CAP_CHECKPOINT_RESTORE,
}

// dropFromSpec edits a bundle's config.json: its process's capabilities.
func dropFromSpec(in []byte, have capSet) ([]byte, bool, error) {
	var spec map[string]json.RawMessage
	if err := json.Unmarshal(in, &spec); err != nil {
		return nil, false, fmt.Errorf("parse: %w", err)
	}
	proc, ok := spec["process"]
	if !ok {
		return in, false, nil
	}
	newProc, changed, err := dropFromProcess(proc, have)
	if err != nil || !changed {
		return in, false, err
	}
	spec["process"] = newProc
	out, err := json.Marshal(spec)
	return out, true, err
}

// dropFromProcess edits an OCI process object (the --process file of runc
// exec, or config.json's "process"): every capability list loses the
// capabilities the bounding set lacks.
func dropFromProcess(in []byte, have capSet) ([]byte, bool, error) {
	var proc map[string]json.RawMessage
	if err := json.Unmarshal(in, &proc); err != nil {
		return nil, false, fmt.Errorf("parse process: %w", err)
	}
	raw, ok := proc["capabilities"]
	if !ok || have == nil {
		return in, false, nil
	}
	var caps map[string][]string
	if err := json.Unmarshal(raw, &caps); err != nil {
		return nil, false, fmt.Errorf("parse process.capabilities: %w", err)
	}
	changed := false
	for kind, list := range caps {
		kept := slices.DeleteFunc(slices.Clone(list), func(name string) bool {
			n, known := capNumbers[name]
			return known && !have[n]
		})
		if len(kept) != len(list) {
			caps[kind] = kept
			changed = true
		}
	}
	if !changed {
		return in, false, nil
	}
	newCaps, err := json.Marshal(caps)
	if err != nil {
		return nil, false, err
	}
	proc["capabilities"] = newCaps
	out, err := json.Marshal(proc)
	return out, true, err
}
