package bench

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// dataplane times connect() from the client namespace to the ClusterIPs
// of random Services: the handshake crosses the node's rules both ways,
// so it carries the per-packet cost of the mode (upstream's iptables walks
// KUBE-SERVICES linearly). Each connection is reset on close so no
// TIME_WAIT piles up.
func (r *rowRun) dataplane(clientNS string) {
	n := r.spec.Connections
	var lat []float64
	errs := 0
	var last error
	err := netns.Do(clientNS, func() error {
		d := net.Dialer{Timeout: 2 * time.Second}
		for i := 0; i < n; i++ {
			s := r.objs.services[r.rng.Intn(len(r.objs.services))]
			addr := net.JoinHostPort(s.clusterIP, strconv.Itoa(servicePort))
			t0 := time.Now()
			c, err := d.Dial("tcp", addr)
			el := time.Since(t0)
			if err != nil {
				errs++
				last = err
				continue
			}
			lat = append(lat, float64(el.Microseconds()))
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			c.Close()
		}
		return nil
	})
	if err != nil {
		last, errs = err, n
	}
	s := sortedCopy(lat)
	r.row.Connections = len(s)
	r.row.ConnectErrors = errs
	r.row.ConnectP50Us = percentile(s, 50)
	r.row.ConnectP99Us = percentile(s, 99)
	if errs > 0 && r.row.Reason == "" {
		r.row.Reason = fmt.Sprintf("%d of %d connections failed, last: %v", errs, n, last)
	}
}
