package bench

import (
	"strings"

	"github.com/proxyproof/proxyproof/suites/census"
)

// ipvsTable is /proc/net/ip_vs read into TCP virtual servers ("IP:PORT")
// and their real servers ("IP:PORT" -> weight). The guest kernel prints
// the whole table in one read, cheaper under TCG than a netlink dump of
// each virtual server's destinations.
type ipvsTable map[string]map[string]int

// active counts vs's real servers that take new connections (weight > 0:
// upstream keeps a removed endpoint at weight 0 while it drains).
func (t ipvsTable) active(vs string) int {
	n := 0
	for _, w := range t[vs] {
		if w > 0 {
			n++
		}
	}
	return n
}

// parseIPVSProc reads /proc/net/ip_vs (census.ParseIPVSProc, the one
// reader of IPVS state) into the TCP IPv4 virtual servers the bench's
// Services are; UDP, SCTP, firewall-mark and IPv6 ones are skipped.
func parseIPVSProc(text string) (ipvsTable, error) {
	vss, err := census.ParseIPVSProc(text)
	if err != nil {
		return nil, err
	}
	t := ipvsTable{}
	for _, vs := range vss {
		if vs.Proto == "TCP" && !strings.HasPrefix(vs.Addr, "[") {
			t[vs.Addr] = vs.Reals
		}
	}
	return t, nil
}
