package healthz

import (
	"fmt"
	"net"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// listen opens a TCP listener on addr in network namespace ns ("" = here).
// A socket stays in the namespace it was made in, so serving it from any
// goroutine later is fine.
func listen(ns, addr string) (net.Listener, error) {
	var ln net.Listener
	err := netns.Do(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		if ns != "" {
			return nil, fmt.Errorf("listen on %s in network namespace %q: %w", addr, ns, err)
		}
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}
