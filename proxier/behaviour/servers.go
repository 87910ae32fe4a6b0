package behaviour

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// Backend ports every pod serves: HTTP on TCP answers "<pod> <client ip>",
// and so does a UDP datagram.
const (
	TCPPort = 8080
	UDPPort = 8081
)

// servers runs the backends' programs and stops them with the test.
type servers struct {
	mu      sync.Mutex
	closers []func()
}

// start serves TCP and UDP on pod p (inside its namespace).
func (s *servers) start(p *Pod) error {
	ln, err := netns.Listen(p.NS, "tcp4", fmt.Sprintf(":%d", TCPPort))
	if err != nil {
		return fmt.Errorf("pod %s: start servers: %w", p.Name, err)
	}
	pc, err := netns.ListenPacket(p.NS, "udp4", fmt.Sprintf(":%d", UDPPort))
	if err != nil {
		ln.Close()
		return fmt.Errorf("pod %s: start servers: %w", p.Name, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(w, "%s %s", p.Name, host)
	})}
	go srv.Serve(ln)
	go func() {
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			ua := from.(*net.UDPAddr)
			pc.WriteTo([]byte(fmt.Sprintf("%s %s", p.Name, ua.IP)), from)
		}
	}()
	s.mu.Lock()
	s.closers = append(s.closers, func() { srv.Shutdown(context.Background()); pc.Close() })
	s.mu.Unlock()
	return nil
}

func (s *servers) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.closers {
		c()
	}
	s.closers = nil
}

// Answer is what a backend said: who it is and whom it saw.
type Answer struct {
	Pod      string
	ClientIP string
}

func parseAnswer(b []byte) (Answer, error) {
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return Answer{}, fmt.Errorf("unexpected answer %q", b)
	}
	return Answer{Pod: f[0], ClientIP: f[1]}, nil
}
