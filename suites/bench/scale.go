package bench

import (
	"fmt"
	"strconv"
	"strings"
)

// Scale is one object count: Services, each with Endpoints endpoints.
type Scale struct {
	Services  int
	Endpoints int
}

func (s Scale) String() string { return fmt.Sprintf("%dx%d", s.Services, s.Endpoints) }

// ParseScales reads "2000x5,10000x10".
func ParseScales(s string) ([]Scale, error) {
	var out []Scale
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		a, b, ok := strings.Cut(part, "x")
		n, err1 := strconv.Atoi(a)
		m, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || n < 1 || m < 1 {
			return nil, fmt.Errorf("scale %q: want SERVICESxENDPOINTS with both >= 1, e.g. 2000x5", part)
		}
		// Endpoint addresses come from 172.16.0.0/12 (about a million).
		if n*m > 900_000 {
			return nil, fmt.Errorf("scale %q: %d endpoints, at most 900000", part, n*m)
		}
		out = append(out, Scale{Services: n, Endpoints: m})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("scale %q: no scale given", s)
	}
	return out, nil
}
