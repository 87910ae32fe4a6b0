package kernelvm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

const (
	defaultTimeout  = 10 * time.Minute
	defaultMemoryMB = 1024
	// kernelCmdline: quiet because every console byte is slow under TCG;
	// mitigations and crypto self-tests only cost boot time in a test VM.
	kernelCmdline = "console=ttyS0 panic=-1 quiet mitigations=off cryptomgr.notests"
	// runMarker is the console line the guest init prints just before it
	// starts the job: the end of the boot.
	runMarker = "kernelvm: running"
	// consoleKeep bounds how much console text is kept for error messages.
	consoleKeep = 16 << 10
)

// Options says what to run in the VM and how to shape the VM.
type Options struct {
	// Binary is run chrooted into the host's /, so a host path works as is;
	// a bare name is looked up in the guest's PATH (the host's binaries).
	Binary string
	Args   []string
	// Env is KEY=VALUE added to a clean environment holding PATH, HOME and
	// PROXYPROOF_IN_VM=1.
	Env []string
	// Dir is the working directory in the VM (read-only unless under /tmp
	// or /run); empty means the caller's working directory.
	Dir string
	// Timeout bounds the whole run, boot included (default 10 minutes;
	// negative: no bound, the VM runs until ctx ends, e.g. a cluster node).
	Timeout time.Duration
	// MemoryMB is the guest memory (default 1024); CPUs the vCPUs (default 1).
	MemoryMB int
	CPUs     int

	// TapNetNS and TapName give the VM a virtio NIC (eth0 in the guest)
	// backed by tap device TapName in network namespace TapNetNS ("" = the
	// current one). Create the tap first (ip tuntap add dev T mode tap) to
	// configure its host side; otherwise qemu creates a transient one.
	// Without TapName the VM has no network device but loopback.
	TapNetNS string
	TapName  string
	// MAC is the guest NIC's address (default: qemu's 52:54:00:12:34:56).
	MAC string
	// GuestAddress (CIDR) and GuestGateway configure eth0 before the
	// binary starts; both optional.
	GuestAddress string
	GuestGateway string

	// Shares are host directories the guest mounts read-write (or
	// read-only) over 9p before the binary starts: the one way, besides
	// the per-run directory, for a guest to write to the host.
	Shares []Share

	// WorkDir is where the per-run directory is made (default the
	// system's temporary directory); it is removed when Run returns.
	WorkDir string

	// Console, when set, receives the guest console as it arrives.
	Console io.Writer `json:"-"`
}

// Share is a host directory shown to the guest at GuestPath.
type Share struct {
	HostPath  string
	GuestPath string
	ReadOnly  bool
	// Cached mounts it with cache=loose: the guest keeps what it read
	// (pages, attributes, names) and no longer asks the host, so a file
	// the host changes afterwards may be seen stale. For files that do not
	// change while the VM runs: binaries. Uncached, every page a program
	// touches is a 9p round trip through qemu; measured in a node VM
	// (TCG), a Go hello world took 0.30-0.37 s to run from an uncached
	// share and 0.02 s from a cached one, netprobe 0.40-0.58 s against
	// 0.02-0.04 s.
	Cached bool
}

// Result is what a run in the VM produced.
type Result struct {
	// ExitCode is the binary's exit status as the guest shell saw it
	// (128+N for a signal N; 125 if the job could not start it).
	ExitCode int
	// Output is the binary's stdout and stderr, interleaved.
	Output []byte
	// Boot is qemu start to the job start; Total is qemu start to exit.
	Boot  time.Duration
	Total time.Duration
}

// Run boots the VM, runs opts.Binary in it and returns its output and exit
// code. An error means the VM did not run the binary to completion (no
// image, qemu failed, a module failed to load, timeout); the Result then
// holds whatever output there was.
func Run(ctx context.Context, opts Options) (Result, error) {
	img, err := CurrentImage()
	if err != nil {
		return Result{}, err
	}
	wd, err := os.Getwd()
	if err != nil {
		return Result{}, fmt.Errorf("kernel VM: working directory: %w", err)
	}
	if opts.Dir == "" {
		opts.Dir = wd
	}
	opts.Binary = absBinary(opts.Binary, wd)
	job, err := jobScript(opts)
	if err != nil {
		return Result{}, err
	}
	runDir, err := os.MkdirTemp(opts.WorkDir, "kernelvm-run-")
	if err != nil {
		return Result{}, fmt.Errorf("kernel VM: run directory: %w", err)
	}
	defer os.RemoveAll(runDir)
	if err := os.WriteFile(filepath.Join(runDir, "job"), []byte(job), 0o755); err != nil {
		return Result{}, fmt.Errorf("kernel VM: write job: %w", err)
	}
	args, err := qemuArgs(img, runDir, opts)
	if err != nil {
		return Result{}, err
	}

	timeout := opts.Timeout
	if timeout == 0 {
		timeout = defaultTimeout
	}
	cancel := context.CancelFunc(func() {})
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, timeout)
	}
	defer cancel()
	res, ended := boot(ctx, args, opts)
	res.Output, _ = os.ReadFile(filepath.Join(runDir, "output"))
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return res, fmt.Errorf("kernel VM run of %s: timed out after %s (boot took %s): %w", opts.Binary, timeout, res.Boot, ended)
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("kernel VM run of %s: stopped (%w) after %s: %w", opts.Binary, context.Cause(ctx), res.Total.Round(time.Millisecond), ended)
	}
	code, err := readExitCode(runDir)
	if err != nil {
		return res, fmt.Errorf("kernel VM run of %s: %w; %w", opts.Binary, err, ended)
	}
	res.ExitCode = code
	klog.V(2).InfoS("Kernel VM run finished", "binary", opts.Binary, "exitCode", code, "boot", res.Boot, "total", res.Total)
	return res, nil
}

// qemuArgs builds the qemu command line (without the binary).
func qemuArgs(img Image, runDir string, opts Options) ([]string, error) {
	if strings.ContainsRune(runDir, ',') {
		return nil, fmt.Errorf("kernel VM: run directory %q holds a comma, which qemu options cannot carry", runDir)
	}
	mem, cpus := opts.MemoryMB, opts.CPUs
	if mem <= 0 {
		mem = defaultMemoryMB
	}
	if cpus <= 0 {
		cpus = 1
	}
	args := []string{
		"-accel", "tcg", "-cpu", "max",
		"-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
		"-nographic", "-no-reboot",
		"-kernel", img.Kernel, "-initrd", img.Initrd, "-append", kernelCmdline,
		// multidevs=remap: / spans several host filesystems; without it
		// inode numbers could collide in the guest.
		"-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
		"-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
		"-fsdev", "local,id=kernelvm,path=" + runDir + ",security_model=none",
		"-device", "virtio-9p-pci,fsdev=kernelvm,mount_tag=kernelvm",
	}
	for i, sh := range opts.Shares {
		if !filepath.IsAbs(sh.HostPath) || strings.ContainsRune(sh.HostPath, ',') {
			return nil, fmt.Errorf("kernel VM: share %q: want an absolute host path without commas", sh.HostPath)
		}
		fsdev := fmt.Sprintf("local,id=share%d,path=%s,security_model=none", i, sh.HostPath)
		if sh.ReadOnly {
			fsdev += ",readonly=on"
		}
		args = append(args, "-fsdev", fsdev, "-device", fmt.Sprintf("virtio-9p-pci,fsdev=share%d,mount_tag=%s", i, shareTag(i)))
	}
	if opts.TapName == "" {
		return append(args, "-nic", "none"), nil
	}
	if strings.ContainsAny(opts.TapName+opts.MAC, ",= ") {
		return nil, fmt.Errorf("kernel VM: tap %q / MAC %q holds characters qemu options cannot carry", opts.TapName, opts.MAC)
	}
	dev := "virtio-net-pci,netdev=net0"
	if opts.MAC != "" {
		dev += ",mac=" + opts.MAC
	}
	return append(args,
		"-netdev", "tap,id=net0,ifname="+opts.TapName+",script=no,downscript=no",
		"-device", dev), nil
}

// boot runs qemu to its exit, timing the boot from the console marker. The
// error says how the VM ended, with the guest's "kernelvm:" lines and the
// console tail; it is always set, and only matters when the guest recorded
// no exit code.
func boot(ctx context.Context, args []string, opts Options) (Result, error) {
	cmd := netns.Cmd(opts.TapNetNS, qemuBinary, args...)
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return Result{}, fmt.Errorf("kernel VM: %w", err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("kernel VM: start %s: %w", qemuBinary, err)
	}
	// ip netns exec execs qemu in place, so this kills qemu itself.
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	defer stop()

	con := &console{start: start, copyTo: opts.Console}
	con.read(stdout) // to EOF, before Wait closes the pipe
	waitErr := cmd.Wait()
	res := Result{Boot: con.bootTime(), Total: time.Since(start)}
	if waitErr != nil {
		return res, &vmError{what: fmt.Sprintf("%s exited: %v: %s", qemuBinary, waitErr, strings.TrimSpace(stderr.String())), con: con}
	}
	return res, &vmError{what: "the VM powered off", con: con}
}

// vmError describes how a VM ended, with what its console said.
type vmError struct {
	what string
	con  *console
}

func (e *vmError) Error() string {
	e.con.mu.Lock()
	defer e.con.mu.Unlock()
	var b strings.Builder
	b.WriteString(e.what)
	if len(e.con.notes) > 0 {
		b.WriteString("\nguest: " + strings.Join(e.con.notes, "\nguest: "))
	}
	if tail := strings.TrimSpace(e.con.tail.String()); tail != "" {
		b.WriteString("\nconsole tail:\n" + tail)
	}
	return b.String()
}

// readExitCode reads the exit code the guest recorded.
func readExitCode(runDir string) (int, error) {
	data, err := os.ReadFile(filepath.Join(runDir, "exit"))
	if err != nil {
		return 0, fmt.Errorf("the guest recorded no exit code: %w", err)
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("the guest recorded exit code %q: %w", data, err)
	}
	return code, nil
}

// console follows the guest console: the boot marker, "kernelvm:" lines
// and a bounded tail.
type console struct {
	start  time.Time
	copyTo io.Writer

	mu     sync.Mutex
	booted time.Duration
	notes  []string
	tail   bytes.Buffer
}

func (c *console) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if c.copyTo != nil {
			fmt.Fprintln(c.copyTo, line)
		}
		// SeaBIOS and the kernel emit terminal control sequences; the init
		// lines may follow them on the same line.
		idx := strings.Index(line, "kernelvm: ")
		c.mu.Lock()
		if idx >= 0 {
			note := line[idx:]
			if note == runMarker && c.booted == 0 {
				c.booted = time.Since(c.start)
			}
			c.notes = append(c.notes, strings.TrimPrefix(note, "kernelvm: "))
		}
		c.tail.WriteString(line + "\n")
		if c.tail.Len() > 2*consoleKeep {
			c.tail.Next(c.tail.Len() - consoleKeep)
		}
		c.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r)
}

func (c *console) bootTime() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.booted
}
