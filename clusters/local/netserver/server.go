package netserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
)

// Config says where the server listens and how it shuts down.
type Config struct {
	// Address is the IP to listen on; empty means every address.
	Address string
	// HTTPPort and UDPPort; 0 picks a free port (tests), -1 disables UDP.
	HTTPPort int
	UDPPort  int
	// ShutdownDelay is how long /readyz answers 503 after the stop signal
	// before the server exits: endpoints have that long to drop the pod.
	ShutdownDelay time.Duration
	// Hostname is what /hostname and UDP answers carry; empty means
	// $POD_NAME, else os.Hostname.
	Hostname string
}

// Server is a running netserver.
type Server struct {
	cfg      Config
	hostname string
	http     net.Listener
	udp      net.PacketConn
	stopping atomic.Bool
}

// Listen binds the ports; Serve then answers on them.
func Listen(cfg Config) (*Server, error) {
	s := &Server{cfg: cfg, hostname: hostname(cfg.Hostname)}
	l, err := net.Listen("tcp", net.JoinHostPort(cfg.Address, strconv.Itoa(cfg.HTTPPort)))
	if err != nil {
		return nil, fmt.Errorf("netserver: http port %d: %w", cfg.HTTPPort, err)
	}
	s.http = l
	if cfg.UDPPort >= 0 {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(cfg.Address, strconv.Itoa(cfg.UDPPort)))
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("netserver: udp port %d: %w", cfg.UDPPort, err)
		}
		s.udp = pc
	}
	return s, nil
}

func hostname(configured string) string {
	if configured != "" {
		return configured
	}
	if n := os.Getenv("POD_NAME"); n != "" {
		return n
	}
	n, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return n
}

// HTTPAddr and UDPAddr are the bound addresses (UDPAddr nil when disabled).
func (s *Server) HTTPAddr() net.Addr { return s.http.Addr() }
func (s *Server) UDPAddr() net.Addr {
	if s.udp == nil {
		return nil
	}
	return s.udp.LocalAddr()
}

// Serve answers until ctx ends (the stop signal), then keeps answering with
// /readyz 503 for the shutdown delay, closes everything and returns.
func (s *Server) Serve(ctx context.Context) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(s.http) }()
	if s.udp != nil {
		go func() { errc <- s.serveUDP() }()
	}
	klog.InfoS("netserver serving", "hostname", s.hostname, "http", s.http.Addr(), "udp", s.UDPAddr())
	select {
	case err := <-errc:
		s.close(srv)
		return fmt.Errorf("netserver: %w", err)
	case <-ctx.Done():
	}
	s.stopping.Store(true)
	klog.InfoS("netserver stopping: readyz now fails", "shutdownDelay", s.cfg.ShutdownDelay)
	time.Sleep(s.cfg.ShutdownDelay)
	s.close(srv)
	klog.InfoS("netserver stopped")
	return nil
}

func (s *Server) close(srv *http.Server) {
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if s.udp != nil {
		s.udp.Close()
	}
}

// Handler serves the HTTP endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/hostname", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, s.hostname)
	})
	mux.HandleFunc("/clientip", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.RemoteAddr)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if s.stopping.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	})
	return mux
}

// serveUDP answers every datagram with "<hostname> <client ip:port>".
func (s *Server) serveUDP() error {
	buf := make([]byte, 65535)
	for {
		_, addr, err := s.udp.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("udp: %w", err)
		}
		if _, err := s.udp.WriteTo([]byte(s.hostname+" "+addr.String()), addr); err != nil {
			klog.ErrorS(err, "UDP answer failed", "client", addr)
		}
	}
}
