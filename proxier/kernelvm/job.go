package kernelvm

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
)

// InVMEnv is set to "1" in every command the VM runs.
const InVMEnv = "PROXYPROOF_IN_VM"

// guestPath is the PATH commands get in the VM (the host's, through chroot).
const guestPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// guestNIC is the name the kernel gives the virtio NIC (no udev renames it).
const guestNIC = "eth0"

// jobScript renders the shell script the guest runs chrooted into the host:
// optional network setup, then the binary with a clean environment.
func jobScript(o Options) (string, error) {
	if o.Binary == "" {
		return "", fmt.Errorf("kernel VM job: no binary")
	}
	env := []string{"PATH=" + guestPath, "HOME=/root", InVMEnv + "=1"}
	for _, kv := range o.Env {
		if !strings.Contains(kv, "=") || strings.HasPrefix(kv, "=") {
			return "", fmt.Errorf("kernel VM job: environment entry %q is not KEY=VALUE", kv)
		}
		env = append(env, kv)
	}
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# Written by proxier/kernelvm; run by the guest init chrooted into the host.\n")
	fmt.Fprintf(&b, "PATH=%s\n", guestPath)
	if err := writeShareMounts(&b, o.Shares); err != nil {
		return "", err
	}
	if o.TapName != "" {
		if err := writeNetworkSetup(&b, o); err != nil {
			return "", err
		}
	}
	dir := o.Dir
	if dir == "" {
		dir = "/"
	}
	fmt.Fprintf(&b, "cd %s || exit 125\n", ShellQuote(dir))
	b.WriteString("exec /usr/bin/env -i")
	for _, kv := range env {
		b.WriteString(" " + ShellQuote(kv))
	}
	b.WriteString(" " + ShellQuote(o.Binary))
	for _, a := range o.Args {
		b.WriteString(" " + ShellQuote(a))
	}
	b.WriteString("\n")
	return b.String(), nil
}

// shareTag is the 9p mount tag of the i-th Options.Shares entry.
func shareTag(i int) string { return fmt.Sprintf("share%d", i) }

// writeShareMounts mounts each share at its guest path (made first: it
// may lie in the guest's tmpfs /run, which starts empty), in order, so a
// later share may lie inside an earlier one.
func writeShareMounts(b *strings.Builder, shares []Share) error {
	for i, sh := range shares {
		if !filepath.IsAbs(sh.GuestPath) {
			return fmt.Errorf("kernel VM share %s: guest path %q is not absolute", sh.HostPath, sh.GuestPath)
		}
		opt := "rw"
		if sh.ReadOnly {
			opt = "ro"
		}
		if sh.Cached {
			opt += ",cache=loose"
		}
		dir := ShellQuote(sh.GuestPath)
		fmt.Fprintf(b, "mkdir -p %s && mount -t 9p -o trans=virtio,version=9p2000.L,%s,msize=512000 %s %s || { echo 'kernelvm: mount of share %s failed' >&2; exit 125; }\n",
			dir, opt, shareTag(i), dir, shareTag(i))
	}
	return nil
}

// writeNetworkSetup brings up the guest NIC with the requested address and
// default route, using the host's ip(8).
func writeNetworkSetup(b *strings.Builder, o Options) error {
	fail := func(what string) string {
		return fmt.Sprintf(" || { echo 'kernelvm: %s failed' >&2; exit 125; }\n", what)
	}
	fmt.Fprintf(b, "ip link set %s up%s", guestNIC, fail("ip link set "+guestNIC+" up"))
	if o.GuestAddress != "" {
		if _, err := netip.ParsePrefix(o.GuestAddress); err != nil {
			return fmt.Errorf("kernel VM guest address %q: %w", o.GuestAddress, err)
		}
		fmt.Fprintf(b, "ip addr add %s dev %s%s", ShellQuote(o.GuestAddress), guestNIC, fail("ip addr add "+o.GuestAddress))
	}
	if o.GuestGateway != "" {
		if _, err := netip.ParseAddr(o.GuestGateway); err != nil {
			return fmt.Errorf("kernel VM guest gateway %q: %w", o.GuestGateway, err)
		}
		fmt.Fprintf(b, "ip route add default via %s dev %s%s", ShellQuote(o.GuestGateway), guestNIC, fail("ip route add default via "+o.GuestGateway))
	}
	return nil
}

// ShellQuote quotes s for a POSIX shell (for jobs built as sh -c text).
func ShellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=+,@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// absBinary makes a binary path given relative to the host's working
// directory absolute; a bare name is left for the guest's PATH.
func absBinary(bin, wd string) string {
	if !strings.Contains(bin, "/") || filepath.IsAbs(bin) {
		return bin
	}
	return filepath.Join(wd, bin)
}
