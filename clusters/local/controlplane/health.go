package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// healthClient trusts only the cluster CA and presents the admin
// certificate; every endpoint it asks is on loopback.
func healthClient(ca *authority, admin keyPair) (*http.Client, error) {
	cert, err := tls.X509KeyPair(admin.certPEM, admin.keyPEM)
	if err != nil {
		return nil, fmt.Errorf("admin client certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
			// Health checks must not go through a proxy from the environment.
			Proxy: nil,
		},
	}, nil
}

// waitHealthy polls url until it answers 200, the process exits, or ctx
// ends; the error carries the last answer and the tail of the log.
func waitHealthy(ctx context.Context, c *http.Client, p *process, url string) error {
	last := "no answer yet"
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if done, _ := p.exited(); done {
			return p.failure("exited before %s answered ok (last: %s)", url, last)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("%s: health request %s: %w", p.name, url, err)
		}
		resp, err := c.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, lastLines(string(body), 5))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return p.failure("not healthy at %s: %v (last: %s)", url, context.Cause(ctx), last)
		case <-tick.C:
		}
	}
}

// lastLines keeps a /readyz failure readable: its body lists every check,
// the failing ones marked "[-]"; those are kept, else the last n lines.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	var failing []string
	for _, l := range lines {
		if strings.HasPrefix(l, "[-]") {
			failing = append(failing, l)
		}
	}
	if len(failing) > 0 {
		lines = failing
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
