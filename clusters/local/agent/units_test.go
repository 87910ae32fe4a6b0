package agent

import (
	"net/netip"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestAnImageMatchesOnItsRepository(t *testing.T) {
	for _, tc := range []struct{ image, want string }{
		{"proxyproof/netserver", "proxyproof/netserver"},
		{"proxyproof/netserver:1.0", "proxyproof/netserver"},
		{"docker.io/proxyproof/netserver:latest", "proxyproof/netserver"},
		{"proxyproof/netserver@sha256:abcd", "proxyproof/netserver"},
		{"localhost:5000/netserver:2", "localhost:5000/netserver"},
		{"docker.io/library/busybox", "busybox"},
	} {
		t.Run(tc.image+" is "+tc.want, func(t *testing.T) {
			if got := repository(tc.image); got != tc.want {
				t.Errorf("repository(%q) = %q, want %q", tc.image, got, tc.want)
			}
		})
	}
}

func TestProgramFlagsParse(t *testing.T) {
	image, path, err := ParseProgram("proxyproof/netserver:1.0=/bin/netserver")
	if err != nil || image != "proxyproof/netserver" || path != "/bin/netserver" {
		t.Errorf("ParseProgram = %q %q %v", image, path, err)
	}
	for _, bad := range []string{"", "noequals", "=/bin/x", "img="} {
		if _, _, err := ParseProgram(bad); err == nil {
			t.Errorf("ParseProgram(%q) accepted", bad)
		}
	}
}

func TestNamesFitTheKernelAndTheContract(t *testing.T) {
	uid := types.UID("b05188b3-57f4-4d56-a327-1534ce3bb384")
	if got := hostVeth(uid); got != "calib05188b357f" || len(got) > 15 {
		t.Errorf("hostVeth = %q, want calib05188b357f (15 chars at most)", got)
	}
	if got := PodNetns("pp-p-", uid); got != "pp-p-b05188b3-57f" {
		t.Errorf("PodNetns = %q, want the first 12 UID characters after the prefix", got)
	}
}

func TestIPAMHandsOutAddressesRoundTheRangeAndPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ipam.json")
	m, err := loadIPAM(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.setCIDR("10.244.1.0/29"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, uid := range []types.UID{"a", "b", "c", "d", "e"} { // .2 to .6: five usable
		ip, err := m.allocate(uid, sandbox{Pod: string(uid)})
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		got = append(got, ip.String())
	}
	if want := "10.244.1.2 10.244.1.6"; got[0]+" "+got[4] != want {
		t.Errorf("first and last allocations = %v, want %s", got, want)
	}
	if _, err := m.allocate("f", sandbox{}); err == nil {
		t.Error("a full range handed out another address")
	}
	if ip, _ := m.allocate("c", sandbox{}); ip.String() != "10.244.1.4" {
		t.Errorf("a pod asking again got %s, want its own 10.244.1.4", ip)
	}
	if err := m.release("b"); err != nil {
		t.Fatal(err)
	}
	reloaded, err := loadIPAM(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := reloaded.setCIDR("10.244.1.0/29"); err != nil {
		t.Fatal(err)
	}
	if len(reloaded.all()) != 4 {
		t.Errorf("reloaded state holds %d pods, want 4", len(reloaded.all()))
	}
	if ip, err := reloaded.allocate("g", sandbox{}); err != nil || ip != netip.MustParseAddr("10.244.1.3") {
		t.Errorf("after release, allocation = %s %v, want the freed 10.244.1.3", ip, err)
	}
}

func TestArgsExpandEnvironmentReferencesAsTheKubeletDoes(t *testing.T) {
	env := map[string]string{"POD_NAME": "web", "PORT": "8080"}
	for _, tc := range []struct{ in, want string }{
		{"--name=$(POD_NAME)", "--name=web"},
		{"$(PORT)$(PORT)", "80808080"},
		{"$$(POD_NAME)", "$(POD_NAME)"},
		{"$(MISSING)", "$(MISSING)"},
		{"cost $5", "cost $5"},
		{"open $(POD_NAME", "open $(POD_NAME"},
	} {
		if got := expand(tc.in, env); got != tc.want {
			t.Errorf("expand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestACommandNamingTheProgramKeepsItAndAnyOtherRunsFromPath(t *testing.T) {
	c := &corev1.Container{Name: "c", Args: []string{"--port=$(PORT)"}}
	env := map[string]string{"PORT": "9"}
	got, err := argv(c, "/opt/bin/netserver", env)
	if err != nil || len(got) != 2 || got[0] != "/opt/bin/netserver" || got[1] != "--port=9" {
		t.Errorf("no command: argv = %q %v", got, err)
	}
	c.Command = []string{"/netserver", "--udp-port=-1"}
	got, err = argv(c, "/opt/bin/netserver", env)
	if err != nil || len(got) != 3 || got[0] != "/opt/bin/netserver" || got[1] != "--udp-port=-1" {
		t.Errorf("command naming the program: argv = %q %v", got, err)
	}
	c.Command = []string{"sh", "-c", "exit 3"}
	c.Args = nil
	got, err = argv(c, "/opt/bin/netserver", env)
	if err != nil || filepath.Base(got[0]) != "sh" {
		t.Errorf("other command: argv = %q %v", got, err)
	}
	c.Command = []string{"no-such-binary-anywhere"}
	if _, err := argv(c, "/opt/bin/netserver", env); err == nil {
		t.Error("a command on no PATH was accepted")
	}
}
