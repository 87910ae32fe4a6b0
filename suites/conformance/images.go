package conformance

import (
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/proxyproof/proxyproof/clusters/kind/image"
)

// ImageInputs are the host files upstream's test images are made of:
// binaries built from the Kubernetes tree (hack/conformance/build.sh) and
// Debian packages unpacked (hack/lib/debs.sh), one tree per recipe.
type ImageInputs struct {
	// Bin holds agnhost and regression-issue-74839.
	Bin string
	// Source is the Kubernetes module directory (agnhost's porter
	// certificates).
	Source string
	// Debs maps a recipe's repository name to its unpacked packages.
	Debs map[string]string
}

// recipe is how one upstream test image is made here, in place of its
// Dockerfile (test/images/<name>), which starts from a registry image.
type recipe struct {
	// Debs are the Debian packages of its userland (with their libraries).
	Debs  []string
	build func(in ImageInputs, debs string) ([][]image.Entry, error)
	// Entrypoint and Cmd as upstream's Dockerfile gives them.
	Entrypoint, Cmd []string
}

// recipes by repository name (the part of the image name after the
// registry, before the tag). An image the spec list names without a
// recipe cannot be built offline: its specs must be skipped (reason
// image), and ImagesFor says so.
var recipes = map[string]recipe{
	// test/images/agnhost: alpine + bind-tools curl netcat-openbsd
	// iproute2 iperf bash, the agnhost binary, porter's certificates, the
	// users a SupplementalGroups spec expects. Here busybox stands in for
	// alpine's, DNS tools and iperf are left out (no selected spec runs
	// them; DNS specs are not selected).
	"agnhost": {
		// zlib1g: curl links it and lib_closure follows lib* names only.
		// wget: the specs' `wget -q -O - -T 1 http://IP` segfaulted in
		// busybox-static's applet here (a static glibc loading the
		// image's NSS modules), failing every spec that probes with it.
		Debs:       []string{"busybox-static", "dash", "curl", "zlib1g", "wget", "netcat-openbsd", "iproute2", "bash"},
		Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"},
		build: func(in ImageInputs, debs string) ([][]image.Entry, error) {
			// netcat-openbsd's nc is an alternatives link dpkg-deb -x
			// does not make; busybox's nc takes other flags. dash (its
			// package holds /bin/sh) is sh: busybox's sh runs its own
			// applets before PATH (ip and nc would be busybox's).
			base, err := debianLayer(debs, image.Symlink("/bin/nc", "nc.openbsd"))
			if err != nil {
				return nil, err
			}
			porter := filepath.Join(in.Source, "test/images/agnhost/porter")
			own := []image.Entry{
				image.Bin("/agnhost", filepath.Join(in.Bin, "agnhost")),
				image.Symlink("/agnhost-2", "agnhost"),
				{Path: "/localhost.crt", Mode: 0o644, Source: filepath.Join(porter, "localhost.crt")},
				{Path: "/localhost.key", Mode: 0o644, Source: filepath.Join(porter, "localhost.key")},
				{Path: "/uploads", Mode: 0o755, Dir: true},
				{Path: "/etc/passwd", Mode: 0o644, File: true, Data: []byte(
					"root:x:0:0:root:/root:/bin/sh\nuser-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")},
				{Path: "/etc/group", Mode: 0o644, File: true, Data: []byte(
					"root:x:0:\nuser-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\nnogroup:x:65534:\n")},
			}
			return [][]image.Entry{base, own}, nil
		},
	},
	// test/images/busybox: busybox; Debian's static build, with OpenBSD
	// netcat for nc: the static applets crash resolving a name here (a
	// conntrack spec runs `nc boom-server 9000`).
	"busybox": {
		Debs: []string{"busybox-static", "netcat-openbsd"}, Cmd: []string{"sh"},
		build: func(_ ImageInputs, debs string) ([][]image.Entry, error) {
			base, err := debianLayer(debs, image.Symlink("/bin/nc", "nc.openbsd"))
			return [][]image.Entry{base}, err
		},
	},
	// build-image/distroless-iptables: iptables (both backends), nft,
	// ipset, conntrack; the spec that runs it also runs sleep.
	"distroless-iptables": {
		Debs: append(slices.Clone(image.ToolPackages), "busybox-static"),
		build: func(_ ImageInputs, debs string) ([][]image.Entry, error) {
			tools, err := image.ToolsLayer(debs)
			if err != nil {
				return nil, err
			}
			links, err := busyboxLinks(debs, tools)
			return [][]image.Entry{append(tools, links...)}, err
		},
	},
	// test/images/regression-issue-74839: the static binary.
	"regression-issue-74839": {
		Entrypoint: []string{"/regression-issue-74839"},
		build: func(in ImageInputs, _ string) ([][]image.Entry, error) {
			return [][]image.Entry{{image.Bin("/regression-issue-74839", filepath.Join(in.Bin, "regression-issue-74839"))}}, nil
		},
	},
}

// repository is an image name's repository: registry and tag stripped.
func repository(ref string) string {
	ref = ref[:strings.LastIndexByte(ref, ':')]
	return ref[strings.LastIndexByte(ref, '/')+1:]
}

// ImageDebs are the Debian packages the recipe of ref needs.
func ImageDebs(ref string) ([]string, error) {
	r, ok := recipes[repository(ref)]
	if !ok {
		return nil, noRecipe(ref)
	}
	return r.Debs, nil
}

func noRecipe(ref string) error {
	var have []string
	for k := range recipes {
		have = append(have, k)
	}
	slices.Sort(have)
	return fmt.Errorf("image %s: no recipe to build it offline (have %s); skip the specs that use it in the spec list, reason image", ref, strings.Join(have, ", "))
}

// TestImages are the images refs, each built by its recipe.
func TestImages(refs []string, in ImageInputs) ([]image.Image, error) {
	var out []image.Image
	for _, ref := range refs {
		r, ok := recipes[repository(ref)]
		if !ok {
			return nil, noRecipe(ref)
		}
		layers, err := r.build(in, in.Debs[repository(ref)])
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
		out = append(out, image.Image{
			Names: []string{ref}, Layers: append(layers, []image.Entry{tmpDir}),
			Entrypoint: r.Entrypoint, Cmd: r.Cmd,
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		})
	}
	return out, nil
}

var tmpDir = image.Entry{Path: "/tmp", Mode: fs.ModeSticky | 0o777, Dir: true}

// debianLayer is an unpacked package tree, plus extra, with busybox's
// applets linked in /bin where no package put a program of that name.
func debianLayer(root string, extra ...image.Entry) ([]image.Entry, error) {
	entries, err := image.TreeEntries(root)
	if err != nil {
		return nil, err
	}
	entries = append(entries, extra...)
	links, err := busyboxLinks(root, entries)
	return append(entries, links...), err
}

// busyboxLinks links every applet of root's /bin/busybox as /bin/<applet>
// unless entries has a program of that name in a PATH directory: a
// userland like alpine's, where busybox gives sh, sleep, timeout, cat...
func busyboxLinks(root string, entries []image.Entry) ([]image.Entry, error) {
	bb := filepath.Join(root, "bin/busybox")
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", bb, err)
	}
	have := map[string]bool{}
	for _, e := range entries {
		if !e.Dir {
			have[e.Path] = true // a symlink too: an alternatives link
		}
	}
	var links []image.Entry
	for _, applet := range strings.Fields(string(out)) {
		taken := false
		for _, d := range []string{"/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/"} {
			taken = taken || have[d+applet]
		}
		if !taken && applet != "busybox" {
			links = append(links, image.Symlink("/bin/"+applet, "busybox"))
		}
	}
	return links, nil
}
