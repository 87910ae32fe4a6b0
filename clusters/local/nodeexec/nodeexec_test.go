package nodeexec

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxyproof/proxyproof/proxier/netns/netnstest"
)

func serve(t *testing.T) (Client, string) {
	t.Helper()
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := NewToken(tokFile); err != nil {
		t.Fatal(err)
	}
	tok, err := readToken(tokFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(tok))
	t.Cleanup(srv.Close)
	return Client{Addr: strings.TrimPrefix(srv.URL, "http://"), TokenFile: tokFile}, tokFile
}

func TestExecReturnsTheOutputAndNamesAFailingCommand(t *testing.T) {
	c, _ := serve(t)
	ctx := context.Background()
	out, err := c.Exec(ctx, "", []string{"sh", "-c", "echo out; echo err >&2"})
	if err != nil || string(out) != "out\nerr\n" {
		t.Errorf("Exec = %q, %v; want both streams and no error", out, err)
	}
	out, err = c.Exec(ctx, "", []string{"sh", "-c", "echo why; exit 3"})
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "why") || string(out) != "why\n" {
		t.Errorf("Exec of a failing command = %q, %v; want its output and an error with exit status 3", out, err)
	}
	if _, err := c.Exec(ctx, "", []string{"/no/such/program"}); err == nil || !strings.Contains(err.Error(), "/no/such/program") {
		t.Errorf("Exec of a missing program: %v, want an error naming it", err)
	}
}

func TestExecWithoutTheClustersTokenIsRefused(t *testing.T) {
	c, _ := serve(t)
	other := filepath.Join(t.TempDir(), "other")
	if err := NewToken(other); err != nil {
		t.Fatal(err)
	}
	c.TokenFile = other
	marker := filepath.Join(t.TempDir(), "ran")
	_, err := c.Exec(context.Background(), "", []string{"touch", marker})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("Exec with another token: %v, want 401 Unauthorized", err)
	}
	if _, statErr := os.Stat(marker); statErr == nil {
		t.Error("the command ran despite the wrong token")
	}
}

func TestExecRunsInTheNamedNetworkNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a network namespace")
	}
	ns := netnstest.New(t, "nodeexec")
	c, _ := serve(t)
	out, err := c.Exec(context.Background(), ns, []string{"ip", "-o", "link", "show"})
	if err != nil {
		t.Fatal(err)
	}
	// A fresh namespace holds loopback only; the host has more.
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "lo:") {
		t.Errorf("links seen in namespace %s:\n%s\nwant only lo", ns, out)
	}
}
