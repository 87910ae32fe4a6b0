package framework

import (
	"testing"
	"time"
)

func TestReadyDuringSaysWhetherAPodWasInTheServiceInAWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	tl := &Timeline{events: []EndpointEvent{
		{At: at(10), Pod: "a", Ready: true},
		{At: at(20), Pod: "b", Ready: true},
		{At: at(30), Pod: "a", Ready: false},
	}}
	tests := []struct {
		name     string
		pod      string
		from, to int
		want     bool
	}{
		{"before it became ready", "a", 0, 5, false},
		{"becoming ready inside the window", "a", 5, 12, true},
		{"ready through the window", "a", 12, 15, true},
		{"leaving inside the window", "a", 25, 35, true},
		{"after it left", "a", 31, 40, false},
		{"still ready at the end of the history", "b", 40, 50, true},
		{"a pod never seen", "c", 0, 50, false},
	}
	for _, tt := range tests {
		if got := tl.ReadyDuring(tt.pod, at(tt.from), at(tt.to)); got != tt.want {
			t.Errorf("%s: ReadyDuring(%s, %d, %d) = %v, want %v", tt.name, tt.pod, tt.from, tt.to, got, tt.want)
		}
	}
}

func TestHoldsIPMatchesWholeAddressesOnly(t *testing.T) {
	rules := "-A KUBE-SEP-X -p tcp -j DNAT --to-destination 10.244.1.50:8080\n  -> 10.244.2.7:8080 Masq 1 0 0\n"
	for ip, want := range map[string]bool{"10.244.1.50": true, "10.244.1.5": false, "10.244.2.7": true, "0.244.2.7": false} {
		if got := HoldsIP(rules, ip); got != want {
			t.Errorf("HoldsIP(%s) = %v, want %v", ip, got, want)
		}
	}
}
