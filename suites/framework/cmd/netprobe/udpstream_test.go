package main

import (
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// A UDP server that answers as backend "a" until switched to "b", like a
// Service whose flow the proxier moved to a new endpoint.
func switchingServer(t *testing.T) (addr string, switchTo func(string)) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	var name atomic.Value
	name.Store("a")
	go func() {
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(name.Load().(string)+" "+from.String()+"\n"), from)
		}
	}()
	return pc.LocalAddr().String(), func(s string) { name.Store(s) }
}

func TestAUDPStreamKeepsOneSourcePortAndEndsOnceTheNewBackendAnswersAfterTheMark(t *testing.T) {
	addr, switchTo := switchingServer(t)
	dir := t.TempDir()
	mark, ready := filepath.Join(dir, "mark"), filepath.Join(dir, "ready")
	go func() {
		for !exists(ready) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		switchTo("b")
		_ = os.WriteFile(mark, nil, 0o644)
	}()
	b, err := udpStream(time.Now(), addr, streamOptions{rate: 50, dur: 10 * time.Second, readyFile: ready, markFile: mark, until: "b", untilRun: 3})
	if err != nil {
		t.Fatal(err)
	}
	if b.MarkAt == nil {
		t.Fatalf("the stream never saw the mark file: %+v", b)
	}
	if b.Source == "" {
		t.Error("the stream did not record its one source address")
	}
	last := b.Requests[len(b.Requests)-3:]
	for _, r := range last {
		if r.Backend != "b" {
			t.Fatalf("the stream ended without three answers in a row from b: %+v", last)
		}
	}
	if c := b.Counts(); c["a"] == 0 {
		t.Errorf("no answer from a before the switch: %v", c)
	}
	if d := b.Requests[len(b.Requests)-1].At; d > 5000 {
		t.Errorf("the stream ran %.0f ms; it should end soon after b answers", d)
	}
}

func TestAUDPStreamGoesOnSendingAfterARefusal(t *testing.T) {
	// Nothing listens: every datagram is refused (ICMP port unreachable).
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	b, err := udpStream(time.Now(), addr, streamOptions{rate: 20, dur: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(b.Requests); n < 5 {
		t.Fatalf("%d datagrams sent in 500 ms at 20/s: the stream stopped at a refusal", n)
	}
	if f := b.Failures(); f["refused"] == 0 {
		t.Errorf("failures %v, want refusals counted", f)
	}
}
