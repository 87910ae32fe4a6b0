package framework

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Each endpoint ready after since gets the time to the first addition
// naming its IP as a whole address, in ours' map elements and upstream's
// endpoint chains alike; an addition just before the suite saw it ready
// counts as 0, one long before (another life of the address) does not;
// an endpoint nothing named is not counted.
func TestEventLatenciesTimeEachEndpointToItsFirstAddition(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	tl := &Timeline{events: []EndpointEvent{
		{At: at(-500), Pod: "before-since", IP: "10.244.1.9", Ready: true},
		{At: at(0), Pod: "a", IP: "10.244.1.5", Ready: true},
		{At: at(100), Pod: "b", IP: "10.244.1.50", Ready: true},
		{At: at(200), Pod: "c", IP: "10.244.2.7", Ready: true},
		{At: at(300), Pod: "never", IP: "10.244.3.3", Ready: true},
		{At: at(400), Pod: "a", IP: "10.244.1.5", Ready: false},
	}}
	lines := []stampedLine{
		{at(-3000), "add element ip kube-proxy endpoints-0 { 0-65535 : 10.244.3.3 . 8080 }"},
		{at(40), "add element ip kube-proxy endpoints-0 { 0-32767 : 10.244.1.5 . 8080 }"},
		{at(90), "add element ip kube-proxy endpoints-0 { 0-65535 : 10.244.1.9 . 8080 }"},
		{at(150), "add rule ip kube-proxy endpoint-ABC-ns/svc/tcp/http__10.244.1.50/8080 ip daddr set 10.244.1.50"},
		{at(180), "add chain ip kube-proxy endpoint-XYZ-ns/svc/tcp/http__10.244.2.7/8080"},
		{at(900), "add element ip kube-proxy endpoints-0 { 0-65535 : 10.244.1.5 . 8080 }"},
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "svc"}}
	got := eventLatencies(lines, []Watched{{Service: svc, Port: "http", Timeline: tl}}, t0)
	want := []time.Duration{40 * time.Millisecond, 50 * time.Millisecond, 0}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("latencies %v, want %v (a at 40 ms, b at 50 ms, c named 20 ms before its ready event: 0)", got, want)
	}
}

// netprobe stamp's output; the node's stderr, which the exec returns with
// it (nft's warnings), comes back apart instead of voiding the rest (it
// did once: no careful-rollout figure on either node).
func TestStampedLinesReadsTimeAndTextAndSetsTheRestApart(t *testing.T) {
	lines, other, err := stampedLines([]byte("1796644800000000000 add element ip kube-proxy x { 1 : 10.0.0.1 . 80 }\nW: Received event for an unknown set.\n1796644800000000001 add chain ip kube-proxy y\n"))
	if err != nil || len(lines) != 2 || !lines[0].at.Equal(time.Unix(0, 1796644800000000000)) || lines[0].text != "add element ip kube-proxy x { 1 : 10.0.0.1 . 80 }" || lines[1].text != "add chain ip kube-proxy y" {
		t.Errorf("got %+v, %v", lines, err)
	}
	if len(other) != 1 || other[0] != "W: Received event for an unknown set." {
		t.Errorf("unstamped lines %q, want nft's warning", other)
	}
}
