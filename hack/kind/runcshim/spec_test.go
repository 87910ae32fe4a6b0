package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// hostWithoutSysResource is this VM's bounding set: everything up to
// CAP_CHECKPOINT_RESTORE except CAP_SYS_RESOURCE.
func hostWithoutSysResource() capSet {
	set := capSet{}
	for n := 0; n <= unix.CAP_CHECKPOINT_RESTORE; n++ {
		set[n] = n != unix.CAP_SYS_RESOURCE
	}
	return set
}

func TestParseArgsFindsTheSpecFileOfEachRuncCommand(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want runcCmd
	}{
		{"create as containerd-shim calls it", []string{"--root", "/run/docker/runtime-runc/moby", "--log", "/x/log.json", "--log-format", "json", "create", "--bundle", "/b", "--pid-file", "/b/init.pid", "abc"}, runcCmd{sub: "create", bundle: "/b"}},
		{"create with -b=", []string{"create", "-b=/b2", "abc"}, runcCmd{sub: "create", bundle: "/b2"}},
		{"run without --bundle uses the working directory", []string{"--systemd-cgroup", "run", "abc"}, runcCmd{sub: "run", bundle: "."}},
		{"exec with --process", []string{"--root", "/r", "exec", "--process", "/tmp/runc-process1", "--detach", "--pid-file", "/p", "abc"}, runcCmd{sub: "exec", process: "/tmp/runc-process1"}},
		{"exec with -p=", []string{"exec", "-p=/tmp/p2", "abc"}, runcCmd{sub: "exec", process: "/tmp/p2"}},
		{"exec of a command line has no file", []string{"exec", "abc", "ls"}, runcCmd{sub: "exec"}},
		{"other commands are passed through", []string{"--root", "/r", "delete", "--force", "abc"}, runcCmd{sub: "delete"}},
		{"no command at all", []string{"--version"}, runcCmd{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseArgs(tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("parseArgs(%q) = %+v, want %+v", tt.args, got, tt.want)
			}
		})
	}
}

const privilegedSpec = `{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"args":["/sbin/init"],
"capabilities":{"bounding":["CAP_CHOWN","CAP_SYS_RESOURCE","CAP_NET_ADMIN"],
"effective":["CAP_CHOWN","CAP_SYS_RESOURCE","CAP_NET_ADMIN"],
"permitted":["CAP_CHOWN","CAP_SYS_RESOURCE","CAP_NET_ADMIN"],
"inheritable":["CAP_SYS_RESOURCE"],"ambient":[]},"oomScoreAdj":-999},
"root":{"path":"/var/lib/docker/overlay2/x/merged"},"linux":{"uidMappings":[],"maskedPaths":[],"resources":{"memory":{"limit":1234567890123}}}}`

func TestCreateDropsTheCapabilityTheHostLacksAndKeepsTheRestOfTheSpec(t *testing.T) {
	bundle := t.TempDir()
	path := filepath.Join(bundle, "config.json")
	if err := os.WriteFile(path, []byte(privilegedSpec), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := rewrite([]string{"--root", "/r", "create", "--bundle", bundle, "id"}, hostWithoutSysResource()); err != nil {
		t.Fatal(err)
	}
	got := readJSON(t, path)
	want := readJSONString(t, privilegedSpec)
	caps := want["process"].(map[string]any)["capabilities"].(map[string]any)
	caps["bounding"] = []any{"CAP_CHOWN", "CAP_NET_ADMIN"}
	caps["effective"] = []any{"CAP_CHOWN", "CAP_NET_ADMIN"}
	caps["permitted"] = []any{"CAP_CHOWN", "CAP_NET_ADMIN"}
	caps["inheritable"] = []any{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config.json after the shim:\n got %v\nwant %v", got, want)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("config.json mode = %v, want 0600 kept", st.Mode().Perm())
	}
}

func TestExecDropsTheCapabilityFromTheProcessFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runc-process")
	proc := `{"args":["sh"],"capabilities":{"bounding":["CAP_SYS_RESOURCE","CAP_KILL"],"effective":["CAP_KILL","CAP_SYS_RESOURCE"]},"cwd":"/"}`
	if err := os.WriteFile(path, []byte(proc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rewrite([]string{"exec", "--process", path, "--detach", "id"}, hostWithoutSysResource()); err != nil {
		t.Fatal(err)
	}
	got := readJSON(t, path)
	want := readJSONString(t, `{"args":["sh"],"capabilities":{"bounding":["CAP_KILL"],"effective":["CAP_KILL"]},"cwd":"/"}`)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("process file after the shim:\n got %v\nwant %v", got, want)
	}
}

func TestASpecTheHostCanGrantIsLeftByteForByte(t *testing.T) {
	bundle := t.TempDir()
	path := filepath.Join(bundle, "config.json")
	spec := `{"process": {"capabilities": {"bounding": ["CAP_CHOWN", "CAP_NEW_IN_SOME_FUTURE_KERNEL"]}}}`
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rewrite([]string{"run", "-b", bundle, "id"}, hostWithoutSysResource()); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != spec {
		t.Errorf("config.json changed to %s although nothing needed dropping", got)
	}
}

func TestAMissingSpecFileIsAnErrorNamingIt(t *testing.T) {
	err := rewrite([]string{"create", "--bundle", "/nonexistent/bundle", "id"}, hostWithoutSysResource())
	if err == nil {
		t.Fatal("no error for a bundle without config.json")
	}
	if want := "/nonexistent/bundle/config.json"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name %s", err, want)
	}
}

func TestBoundingSetReadsThisProcess(t *testing.T) {
	set := boundingSet()
	if set == nil {
		t.Fatal("no CapBnd line read from /proc/self/status")
	}
	// Every process may hold CAP_CHOWN unless the host is very unusual;
	// an empty or garbled parse would lose it.
	if !set[unix.CAP_CHOWN] {
		t.Errorf("bounding set %v lacks CAP_CHOWN", set)
	}
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return readJSONString(t, string(b))
}

func readJSONString(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return m
}
