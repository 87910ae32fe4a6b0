// Command runcshim is the OCI runtime dockerd runs on hosts whose capability
// bounding set lacks CAP_SYS_RESOURCE (this VM): a --privileged container
// asks for every capability, runc cannot grant one the host does not hold
// and fails with "unable to apply caps". The shim removes the missing
// capabilities from the bundle's config.json (create, run) and from the
// --process file (exec), then execs the real runc with the same arguments.
//
// hack/kind/docker.sh installs it and registers it as dockerd's default
// runtime. It must never do more than that edit: every other byte of the
// spec reaches runc as written.
package main

import (
	"fmt"
	"os"
	"syscall"
)

// realRunc is where Debian's runc package installs runc.
const realRunc = "/usr/sbin/runc"

func main() {
	args := os.Args[1:]
	if err := rewrite(args, boundingSet()); err != nil {
		// runc's caller (containerd-shim) shows stderr to the user.
		fmt.Fprintf(os.Stderr, "runcshim: %v\n", err)
		os.Exit(1)
	}
	runc := os.Getenv("RUNCSHIM_RUNC")
	if runc == "" {
		runc = realRunc
	}
	argv := append([]string{runc}, args...)
	if err := syscall.Exec(runc, argv, os.Environ()); err != nil {
		fmt.Fprintf(os.Stderr, "runcshim: exec %s: %v\n", runc, err)
		os.Exit(1)
	}
}

// rewrite edits the spec file the runc command line names, if any, so that
// it asks only for capabilities in the bounding set have.
func rewrite(args []string, have capSet) error {
	cmd, err := parseArgs(args)
	if err != nil {
		return err
	}
	switch {
	case cmd.process != "":
		return editFile(cmd.process, func(b []byte) ([]byte, bool, error) { return dropFromProcess(b, have) })
	case cmd.bundle != "":
		return editFile(cmd.bundle+"/config.json", func(b []byte) ([]byte, bool, error) { return dropFromSpec(b, have) })
	}
	return nil
}

// editFile rewrites path through edit, keeping its mode, only when edit
// changed something.
func editFile(path string, edit func([]byte) ([]byte, bool, error)) error {
	in, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read OCI spec: %w", err)
	}
	out, changed, err := edit(in)
	if err != nil {
		return fmt.Errorf("OCI spec %s: %w", path, err)
	}
	if !changed {
		return nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stat OCI spec: %w", err)
	}
	if err := os.WriteFile(path, out, st.Mode().Perm()); err != nil {
		return fmt.Errorf("write OCI spec: %w", err)
	}
	return nil
}
