package image

import (
	"archive/tar"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// fakeInputs has a distinct small file for every binary.
func fakeInputs(t *testing.T) Inputs {
	t.Helper()
	dir := t.TempDir()
	kube := filepath.Join(dir, "kube")
	if err := os.Mkdir(kube, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"} {
		writeFile(t, kube, c, "binary "+c)
	}
	tools := fakeToolsTree(t)
	toolEntries, err := ToolsLayer(tools)
	if err != nil {
		t.Fatal(err)
	}
	return Inputs{
		Version: "v1.34.4", KubeBin: kube,
		Etcd: writeFile(t, dir, "etcd", "binary etcd"), CoreDNS: writeFile(t, dir, "coredns", "binary coredns"),
		Pause: writeFile(t, dir, "pause", "binary pause"), Proxier: writeFile(t, dir, "proxier", "binary proxier"),
		Netserver: writeFile(t, dir, "netserver", "binary netserver"), Netprobe: writeFile(t, dir, "netprobe", "binary netprobe"),
		Tools: toolEntries,
	}
}

func fakeToolsTree(t *testing.T) string {
	root := t.TempDir()
	sbin := filepath.Join(root, "usr/sbin")
	if err := os.MkdirAll(sbin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"xtables-nft-multi", "xtables-legacy-multi", "nft", "ipset", "conntrack"} {
		writeFile(t, sbin, f, "tool "+f)
	}
	for _, d := range []string{"sbin", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(root, "sbin"), "sysctl", "tool sysctl")
	writeFile(t, filepath.Join(root, "etc"), "protocols", "tcp 6 TCP")
	for _, l := range []string{"iptables-nft", "iptables-legacy"} {
		if err := os.Symlink("xtables-nft-multi", filepath.Join(sbin, l)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// flatten reads every layer of im's built image into one path -> entry map.
func flatten(t *testing.T, im Image) (map[string]tarEntry, []string, []string) {
	t.Helper()
	img, err := im.Build()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture == "" {
		t.Errorf("image %s platform %s/%s, want linux/<arch>", im.Names[0], cfg.OS, cfg.Architecture)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	got := map[string]tarEntry{}
	tr := tar.NewReader(rc)
	for h, err := tr.Next(); err == nil; h, err = tr.Next() {
		data := make([]byte, h.Size)
		_, _ = tr.Read(data)
		got["/"+strings.TrimSuffix(h.Name, "/")] = tarEntry{typ: h.Typeflag, mode: h.Mode, link: h.Linkname, data: string(data)}
	}
	return got, cfg.Config.Entrypoint, cfg.Config.Env
}

func TestControlPlaneImagesAreTheBinariesUnderKubeadmsNames(t *testing.T) {
	in := fakeInputs(t)
	images, err := ControlPlane(in)
	if err != nil {
		t.Fatal(err)
	}
	names, _ := KubeadmNames(in.Version)
	// What kubeadm's manifests run, where: the command resolved on PATH,
	// or the entrypoint for CoreDNS (args only) and pause.
	want := map[string]struct{ file, content, entry string }{
		names.APIServer:         {"/usr/local/bin/kube-apiserver", "binary kube-apiserver", "/usr/local/bin/kube-apiserver"},
		names.ControllerManager: {"/usr/local/bin/kube-controller-manager", "binary kube-controller-manager", "/usr/local/bin/kube-controller-manager"},
		names.Scheduler:         {"/usr/local/bin/kube-scheduler", "binary kube-scheduler", "/usr/local/bin/kube-scheduler"},
		names.KubeProxy:         {"/usr/local/bin/kube-proxy", "binary kube-proxy", "/usr/local/bin/kube-proxy"},
		names.Etcd:              {"/usr/local/bin/etcd", "binary etcd", "/usr/local/bin/etcd"},
		names.CoreDNS:           {"/coredns", "binary coredns", "/coredns"},
		names.Pause:             {"/pause", "binary pause", "/pause"},
	}
	var gotNames []string
	for _, im := range images {
		gotNames = append(gotNames, im.Names...)
		w := want[im.Names[0]]
		files, entry, env := flatten(t, im)
		if f := files[w.file]; f.data != w.content || f.mode != 0o755 {
			t.Errorf("%s: %s = %+v, want the binary, mode 0755", im.Names[0], w.file, f)
		}
		if !slices.Equal(entry, []string{w.entry}) {
			t.Errorf("%s: entrypoint %q, want [%s]", im.Names[0], entry, w.entry)
		}
		if !slices.Contains(env, pathEnv) {
			t.Errorf("%s: env %q lacks %s (kubeadm names commands without a directory)", im.Names[0], env, pathEnv)
		}
	}
	wantNames := append(names.List(), KubeProxyRepo+":v1.34.4")
	slices.Sort(gotNames)
	slices.Sort(wantNames)
	if !slices.Equal(gotNames, wantNames) {
		t.Errorf("control-plane image names\n got %q\nwant %q", gotNames, wantNames)
	}
}

func TestProxierImagesCarryTheToolsTheyExec(t *testing.T) {
	in := fakeInputs(t)
	for _, tt := range []struct {
		im   Image
		bin  string
		name string
	}{
		{Proxier(in), "/proxier", ProxierImage},
		{KubeProxy(in), "/usr/local/bin/kube-proxy", "proxyproof/kube-proxy:v1.34.4"},
	} {
		files, entry, _ := flatten(t, tt.im)
		if tt.im.Names[0] != tt.name {
			t.Errorf("image name %s, want %s", tt.im.Names[0], tt.name)
		}
		if !slices.Equal(entry, []string{tt.bin}) || files[tt.bin].mode != 0o755 {
			t.Errorf("%s: entrypoint %q, %s = %+v; want it, executable", tt.name, entry, tt.bin, files[tt.bin])
		}
		for _, tool := range []string{"/usr/sbin/nft", "/usr/sbin/ipset", "/usr/sbin/conntrack", "/usr/sbin/xtables-legacy-multi", "/sbin/sysctl"} {
			if files[tool].typ != tar.TypeReg {
				t.Errorf("%s lacks %s", tt.name, tool)
			}
		}
		if l := files["/usr/sbin/iptables-restore"]; l.link != "iptables-nft-restore" {
			t.Errorf("%s: iptables-restore = %+v, want a link to iptables-nft-restore", tt.name, l)
		}
		if files["/tmp"].mode != 0o1777 {
			t.Errorf("%s: /tmp mode %o, want 1777", tt.name, files["/tmp"].mode)
		}
	}
}

func TestNetserverImageHasNetprobeOnPath(t *testing.T) {
	files, entry, env := flatten(t, Netserver(fakeInputs(t)))
	if !slices.Equal(entry, []string{"/usr/local/bin/netserver"}) {
		t.Errorf("entrypoint %q, want the netserver (the framework passes only args)", entry)
	}
	if files["/usr/local/bin/netprobe"].data != "binary netprobe" || !slices.Contains(env, pathEnv) {
		t.Errorf("netprobe %+v, env %q: want it at /usr/local/bin on PATH", files["/usr/local/bin/netprobe"], env)
	}
}

func TestToolsLayerRefusesATreeWithoutTheTools(t *testing.T) {
	_, err := ToolsLayer(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "/usr/sbin/xtables-nft-multi") {
		t.Errorf("ToolsLayer(empty) error = %v, want one naming the missing xtables-nft-multi", err)
	}
}

func TestWriteArchiveTagsEveryNameForDockerLoad(t *testing.T) {
	in := fakeInputs(t)
	images := []Image{Netserver(in), KubeProxy(in)}
	images[1].Names = append(images[1].Names, "registry.k8s.io/kube-proxy:v1.34.4")
	path := filepath.Join(t.TempDir(), "images.tar")
	ids, err := WriteArchive(path, images)
	if err != nil {
		t.Fatal(err)
	}
	m := archiveManifest(t, path)
	var tags []string
	for _, d := range m {
		tags = append(tags, d.RepoTags...)
	}
	slices.Sort(tags)
	want := []string{"proxyproof/kube-proxy:v1.34.4", "proxyproof/netserver:latest", "registry.k8s.io/kube-proxy:v1.34.4"}
	if !slices.Equal(tags, want) {
		t.Errorf("archive RepoTags %q, want %q (docker load names images by these)", tags, want)
	}
	tag, _ := name.NewTag("proxyproof/netserver:latest")
	img, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil || !slices.Equal(cfg.Config.Entrypoint, []string{"/usr/local/bin/netserver"}) {
		t.Errorf("netserver read back from the archive: config %+v, err %v", cfg, err)
	}
	id, _ := img.ConfigName()
	if want := "proxyproof/netserver:latest " + id.String() + "\n"; !strings.Contains(ids, want) {
		t.Errorf("ids %q lack %q", ids, want)
	}
}

func archiveManifest(t *testing.T, path string) tarball.Manifest {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for h, err := tr.Next(); err == nil; h, err = tr.Next() {
		if h.Name == "manifest.json" {
			var m tarball.Manifest
			if err := json.NewDecoder(tr).Decode(&m); err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	t.Fatalf("%s has no manifest.json", path)
	return nil
}

func TestKubeadmNamesRefusesVersionsItDoesNotKnow(t *testing.T) {
	for _, v := range []string{"1.34.4", "v1.34", "v1.99.0", ""} {
		if _, err := KubeadmNames(v); err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("KubeadmNames(%q) error = %v, want one naming the version", v, err)
		}
	}
}

// TestNamesMatchKubeadm asks the built kubeadm which images it uses; the
// names must be exactly ours, or the node would try to pull.
func TestNamesMatchKubeadm(t *testing.T) {
	version := pinnedVersion(t)
	kubeadm := filepath.Join(cacheDir(), "k8s", version, "bin", "kubeadm")
	if _, err := os.Stat(kubeadm); err != nil {
		t.Skipf("no kubeadm built at %s (hack/controlplane/build.sh builds it): %v", kubeadm, err)
	}
	out, err := exec.Command(kubeadm, "config", "images", "list", "--kubernetes-version", version).Output()
	if err != nil {
		t.Fatalf("kubeadm config images list: %v", err)
	}
	got := strings.Fields(string(out))
	names, err := KubeadmNames(version)
	if err != nil {
		t.Fatal(err)
	}
	want := names.List()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("kubeadm %s asks for\n %q\nwe build\n %q", version, got, want)
	}
}

func cacheDir() string {
	if d := os.Getenv("PROXYPROOF_CACHE"); d != "" {
		return d
	}
	return "/var/cache/proxyproof"
}

// pinnedVersion is the Kubernetes version hack/controlplane builds.
func pinnedVersion(t *testing.T) string {
	b, err := os.ReadFile("../../../hack/controlplane/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 && f[0] == "k8s.io/kubernetes" {
			return f[1]
		}
	}
	t.Fatal("no k8s.io/kubernetes requirement in hack/controlplane/go.mod")
	return ""
}
