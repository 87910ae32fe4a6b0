package nodeexec

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// Port is where the agent of a VM node serves exec: the kubelet's port,
// the one a node's exec endpoint has in a real cluster.
const Port = 10250

// maxOutput bounds what one command may return (a rule dump fits).
const maxOutput = 16 << 20

// Request is one command: Argv run in network namespace Netns of the
// node ("" = the node's own).
type Request struct {
	Netns string   `json:"netns,omitempty"`
	Argv  []string `json:"argv"`
}

// Response is what the command did.
type Response struct {
	Output   []byte `json:"output"`
	ExitCode int    `json:"exitCode"`
	// Error is set when the command could not run (or was cut short).
	Error string `json:"error,omitempty"`
}

// NewToken makes a random token and writes it to path (mode 0600).
func NewToken(path string) error {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("exec token: %w", err)
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(b)), 0o600); err != nil {
		return fmt.Errorf("exec token: %w", err)
	}
	return nil
}

func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("exec token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("exec token %s is empty", path)
	}
	return tok, nil
}

// Serve answers exec requests on addr until ctx ends.
func Serve(ctx context.Context, addr, tokenFile string) error {
	tok, err := readToken(tokenFile)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("exec server: %w", err)
	}
	srv := &http.Server{Handler: Handler(tok), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	klog.InfoS("Serving node exec", "address", addr)
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("exec server: %w", err)
	}
	return nil
}

// Handler runs one Request per POST /exec carrying the bearer token.
func Handler(token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /exec", func(w http.ResponseWriter, r *http.Request) {
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			http.Error(w, "exec: wrong or missing token", http.StatusUnauthorized)
			return
		}
		var req Request
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || len(req.Argv) == 0 {
			http.Error(w, fmt.Sprintf("exec: want {\"argv\": [...]} (%v)", err), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(run(r.Context(), req))
	})
	return mux
}

func run(ctx context.Context, req Request) Response {
	name, args := req.Argv[0], req.Argv[1:]
	if req.Netns != "" {
		name, args = "ip", append([]string{"netns", "exec", req.Netns}, req.Argv...)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	resp := Response{Output: out.Bytes()}
	if len(resp.Output) > maxOutput {
		resp.Output = resp.Output[len(resp.Output)-maxOutput:]
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		resp.ExitCode = exit.ExitCode()
		if resp.ExitCode < 0 {
			resp.Error = err.Error()
		}
	case err != nil:
		resp.ExitCode = -1
		resp.Error = err.Error()
	}
	return resp
}

// Client sends requests to one node's exec server.
type Client struct {
	// DialNetns is the host namespace to dial from (the underlay).
	DialNetns string
	// Addr is the node's IP:Port.
	Addr      string
	TokenFile string
}

// Exec runs argv on the node (in its namespace netnsName, "" = the
// node's own) and returns the combined output; a non-zero exit is an
// error naming the command, with the output in it.
func (c Client) Exec(ctx context.Context, netnsName string, argv []string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("exec: empty command")
	}
	tok, err := readToken(c.TokenFile)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(Request{Netns: netnsName, Argv: argv})
	if err != nil {
		return nil, err
	}
	httpClient := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return netns.Dial(ctx, &net.Dialer{Timeout: 5 * time.Second}, c.DialNetns, network, addr)
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.Addr+"/exec", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	where := c.Addr
	if netnsName != "" {
		where += " namespace " + netnsName
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", strings.Join(argv, " "), where, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("%s on %s: %s: %s", strings.Join(argv, " "), where, resp.Status, bytes.TrimSpace(msg))
	}
	var out Response
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("%s on %s: reading the answer: %w", strings.Join(argv, " "), where, err)
	}
	if out.Error != "" || out.ExitCode != 0 {
		why := out.Error
		if why == "" {
			why = fmt.Sprintf("exit status %d", out.ExitCode)
		}
		return out.Output, fmt.Errorf("%s on %s: %s: %s", strings.Join(argv, " "), where, why, bytes.TrimSpace(out.Output))
	}
	return out.Output, nil
}
