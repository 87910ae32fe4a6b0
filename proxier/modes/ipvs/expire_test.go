package ipvs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
)

// TestASyncMessageIsWhatTheKernelReads: the message for one IPv4 entry,
// byte for byte the one that, sent by hand in the kernel VM, took a
// TIME_WAIT entry from 119 s left to gone in 2.3 s (ip_vs_sync.c: struct
// ip_vs_sync_mesg, then struct ip_vs_sync_v4, network order).
func TestASyncMessageIsWhatTheKernelReads(t *testing.T) {
	c := Conn{Proto: "TCP", Client: netip.MustParseAddrPort("192.168.77.2:40000"),
		Virtual: netip.MustParseAddrPort("10.96.0.120:80"), Real: netip.MustParseAddrPort("10.77.0.2:8080"),
		State: "TIME_WAIT", Expires: 119}
	msgs := syncMessages([]Conn{c}, 1)
	if len(msgs) != 1 || msgs[0].conns != 1 {
		t.Fatalf("got %d messages, want one with one entry", len(msgs))
	}
	want := []byte{
		0, 0, 0, 44, 1, 1, 0, 0, // reserved, sync id, size 44, 1 entry, version 1, spare
		0, 6, 0, 36, // IPv4, TCP, entry version 0 and size 36
		0, 0, 1, 0, // flags: inactive
		0, 5, // TIME_WAIT
		0x9c, 0x40, 0, 80, 0x1f, 0x90, // client, virtual, real ports
		0, 0, 0, 0, // fwmark
		0, 0, 0, 1, // timeout 1 s
		192, 168, 77, 2, 10, 96, 0, 120, 10, 77, 0, 2,
	}
	if !bytes.Equal(msgs[0].data, want) {
		t.Errorf("message\n got % x\nwant % x", msgs[0].data, want)
	}
}

// TestSyncMessagesSplitAtTheCountAByteHolds: 300 entries go in two
// datagrams (a message counts its entries in one byte), each one's size
// field its length; IPv6 entries take 72 bytes; an ESTABLISHED entry keeps
// its active flag (the kernel moves the real server's counters on a
// change); entries the protocol has no number for are left out.
func TestSyncMessagesSplitAtTheCountAByteHolds(t *testing.T) {
	var conns []Conn
	for i := range 300 {
		conns = append(conns, Conn{Proto: "TCP", Client: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(30000+i)),
			Virtual: netip.MustParseAddrPort("10.96.0.1:443"), Real: netip.MustParseAddrPort("10.0.1.1:6443"), State: "TIME_WAIT"})
	}
	v6 := Conn{Proto: "TCP", Client: netip.MustParseAddrPort("[fd00::5]:40000"), Virtual: netip.MustParseAddrPort("[fd00:96::1]:80"),
		Real: netip.MustParseAddrPort("[fd00:1::4]:8080"), State: "ESTABLISHED"}
	conns = append(conns, v6,
		Conn{Proto: "SCTP", Client: netip.MustParseAddrPort("10.0.0.1:1"), Virtual: netip.MustParseAddrPort("10.96.0.2:9"), State: "ESTABLISHED"},
		Conn{Proto: "TCP", Client: netip.MustParseAddrPort("10.0.0.1:2"), Virtual: netip.MustParseAddrPort("10.96.0.2:9"), State: "BOGUS"})
	msgs := syncMessages(conns, 1)
	var counts []int
	for _, m := range msgs {
		counts = append(counts, m.conns)
		if got := int(binary.BigEndian.Uint16(m.data[2:])); got != len(m.data) {
			t.Errorf("a message says it is %d bytes long, it is %d", got, len(m.data))
		}
		if int(m.data[4]) != m.conns {
			t.Errorf("a message counts %d entries, holds %d", m.data[4], m.conns)
		}
	}
	if fmt.Sprint(counts) != "[255 46]" {
		t.Fatalf("entries per message = %v, want [255 46] (300 IPv4 and one IPv6; SCTP and an unknown state left out)", counts)
	}
	last := msgs[1].data
	if want := 8 + 45*36 + 72; len(last) != want {
		t.Fatalf("second message is %d bytes, want %d", len(last), want)
	}
	e := last[8+45*36:]
	if e[0] != syncTypeIPv6 || binary.BigEndian.Uint16(e[2:]) != 72 || binary.BigEndian.Uint32(e[4:]) != 0 || binary.BigEndian.Uint16(e[8:]) != 1 {
		t.Errorf("IPv6 ESTABLISHED entry starts % x, want type 1, size 72, flags 0, state 1", e[:10])
	}
	if got := netip.AddrFrom16([16]byte(e[24:40])); got != v6.Client.Addr() {
		t.Errorf("IPv6 entry's client = %s, want %s", got, v6.Client.Addr())
	}
}
