package kernelvm

import (
	"strings"
	"testing"
)

func TestJobScript(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		want    []string // lines the script must hold
		wantErr string
	}{
		{
			name: "arguments and environment values with spaces and quotes survive the shell",
			opts: Options{Binary: "/bin/sh", Args: []string{"-c", `echo "$FOO"`, "it's"}, Env: []string{"FOO=a b"}, Dir: "/usr"},
			want: []string{
				"cd /usr || exit 125",
				`exec /usr/bin/env -i PATH=` + guestPath + ` HOME=/root PROXYPROOF_IN_VM=1 'FOO=a b' /bin/sh -c 'echo "$FOO"' 'it'\''s'`,
			},
		},
		{
			name: "an empty argument stays an argument",
			opts: Options{Binary: "/bin/true", Args: []string{""}},
			want: []string{"cd / || exit 125", "/bin/true ''"},
		},
		{
			name: "a tap brings eth0 up with the address and default route asked for",
			opts: Options{Binary: "/bin/true", TapName: "tap0", GuestAddress: "169.254.60.2/30", GuestGateway: "169.254.60.1"},
			want: []string{
				"ip link set eth0 up ||",
				"ip addr add 169.254.60.2/30 dev eth0 ||",
				"ip route add default via 169.254.60.1 dev eth0 ||",
			},
		},
		{
			name: "shares are mounted at their guest paths before the binary runs",
			opts: Options{Binary: "/bin/true", Shares: []Share{{HostPath: "/srv/a", GuestPath: "/run/a b"}, {HostPath: "/srv/b", GuestPath: "/opt/b", ReadOnly: true}, {HostPath: "/srv/a/bin", GuestPath: "/run/a b/bin", ReadOnly: true, Cached: true}}},
			want: []string{
				"mkdir -p '/run/a b' && mount -t 9p -o trans=virtio,version=9p2000.L,rw,msize=512000 share0 '/run/a b' ||",
				"mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000 share1 /opt/b ||",
				"mkdir -p '/run/a b/bin' && mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 share2 '/run/a b/bin' ||",
			},
		},
		{name: "a share with a relative guest path is an error", opts: Options{Binary: "/bin/true", Shares: []Share{{HostPath: "/srv", GuestPath: "srv"}}}, wantErr: `guest path "srv" is not absolute`},
		{name: "no binary is an error", opts: Options{}, wantErr: "no binary"},
		{name: "an environment entry without = is an error", opts: Options{Binary: "/bin/true", Env: []string{"FOO"}}, wantErr: `"FOO" is not KEY=VALUE`},
		{name: "a guest address without a prefix length is an error", opts: Options{Binary: "/bin/true", TapName: "t", GuestAddress: "10.0.0.1"}, wantErr: `guest address "10.0.0.1"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := jobScript(tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("jobScript() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("jobScript(): %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("script lacks %q:\n%s", w, got)
				}
			}
			if tc.opts.TapName == "" && strings.Contains(got, "ip link") {
				t.Errorf("script touches the network without a tap:\n%s", got)
			}
		})
	}
}

func TestTestRunPatternMatchesOnlyTheNamedTest(t *testing.T) {
	tests := []struct{ name, want string }{
		{"TestX", "^TestX$"},
		{"TestX/sub_test_(1)", "^TestX$/^sub_test_\\(1\\)$"},
	}
	for _, tc := range tests {
		if got := testRunPattern(tc.name); got != tc.want {
			t.Errorf("testRunPattern(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestAbsBinaryResolvesOnlyRelativePaths(t *testing.T) {
	tests := []struct{ bin, want string }{
		{"ipvsadm", "ipvsadm"},
		{"/usr/sbin/ipvsadm", "/usr/sbin/ipvsadm"},
		{"./x.test", "/work/pkg/x.test"},
	}
	for _, tc := range tests {
		if got := absBinary(tc.bin, "/work/pkg"); got != tc.want {
			t.Errorf("absBinary(%q) = %q, want %q", tc.bin, got, tc.want)
		}
	}
}

func TestPrefixLinesMarksEveryInnerLine(t *testing.T) {
	got := prefixLines([]byte("--- FAIL: TestX\nFAIL\n"), "vm| ")
	if want := "vm| --- FAIL: TestX\nvm| FAIL"; got != want {
		t.Errorf("prefixLines() = %q, want %q", got, want)
	}
}
