package kernelvm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

const (
	// qemuBinary is the emulator; TCG only (KVM hangs the guest early here).
	qemuBinary = "qemu-system-x86_64"
	// buildScriptRel is the image build script, relative to the module root.
	buildScriptRel = "hack/vm/build-image.sh"
	kernelFile     = "vmlinux"
	initrdFile     = "initrd.img"
	readyFile      = "ready"
)

// Image is a built kernel VM image.
type Image struct {
	Dir    string // the image directory (vm/<key> under the cache)
	Kernel string // uncompressed ELF kernel, booted through its PVH entry
	Initrd string // initramfs with busybox, the module subset and the init
}

// cacheRoot is where build-image.sh puts images.
func cacheRoot() string {
	if dir := os.Getenv("PROXYPROOF_CACHE"); dir != "" {
		return filepath.Join(dir, "vm")
	}
	return "/var/cache/proxyproof/vm"
}

// CurrentImage returns the image vm/current points at, or an error saying
// how to build it.
func CurrentImage() (Image, error) {
	link := filepath.Join(cacheRoot(), "current")
	dir, err := filepath.EvalSymlinks(link)
	if err != nil {
		return Image{}, fmt.Errorf("kernel VM image %s: not built (run %s as root): %w", link, buildScriptRel, err)
	}
	img := Image{Dir: dir, Kernel: filepath.Join(dir, kernelFile), Initrd: filepath.Join(dir, initrdFile)}
	for _, f := range []string{img.Kernel, img.Initrd, filepath.Join(dir, readyFile)} {
		if _, err := os.Stat(f); err != nil {
			return Image{}, fmt.Errorf("kernel VM image %s: incomplete (run %s as root): %w", dir, buildScriptRel, err)
		}
	}
	return img, nil
}

// Available returns nil when a VM can be started: qemu is installed and an
// image is built. Otherwise the error says how to get there.
func Available() error {
	if _, err := exec.LookPath(qemuBinary); err != nil {
		return fmt.Errorf("kernel VM: %s not installed (run %s as root, it installs qemu-system-x86): %w", qemuBinary, buildScriptRel, err)
	}
	_, err := CurrentImage()
	return err
}

// EnsureImage runs build-image.sh, which builds the image when its inputs
// changed and otherwise only checks the cache. Without the script (a test
// binary copied away from the checkout) it falls back to Available.
func EnsureImage(ctx context.Context) error {
	script, err := findBuildScript()
	if err != nil {
		if avail := Available(); avail != nil {
			return errors.Join(err, avail)
		}
		return nil
	}
	cmd := exec.CommandContext(ctx, script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kernel VM image: %s: %w\n%s", script, err, strings.TrimSpace(out.String()))
	}
	return Available()
}

// findBuildScript locates hack/vm/build-image.sh: $PROXYPROOF_VM_BUILD, then
// relative to this source file, then above the working directory.
func findBuildScript() (string, error) {
	if p := os.Getenv("PROXYPROOF_VM_BUILD"); p != "" {
		return p, nil
	}
	var candidates []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		candidates = append(candidates, filepath.Join(filepath.Dir(file), "..", "..", buildScriptRel))
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			candidates = append(candidates, filepath.Join(dir, buildScriptRel))
			if dir == filepath.Dir(dir) {
				break
			}
		}
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
			return filepath.Clean(c), nil
		}
	}
	return "", fmt.Errorf("kernel VM: %s not found (set PROXYPROOF_VM_BUILD to its path)", buildScriptRel)
}
