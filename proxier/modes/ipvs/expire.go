package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// Expirer ends IPVS connection entries before their time, for the switch
// out of ipvs (the migration in proxier/app): when an IPVS entry expires
// the kernel deletes the conntrack entry of its client address and port
// to the virtual address (ip_vs_conn_drop_conntrack), whoever owns that
// entry by then, so a new connection of the next mode that reuses the
// client port of a closed connection's entry (2 minutes of TIME_WAIT)
// is reset when the entry runs out. Expired at once, an entry that
// carries nothing leaves no such trap behind.
//
// The kernel has one way to change an entry's timer from user space:
// IPVS's connection synchronisation, where a backup director takes each
// entry's state and timeout from its master's multicast messages
// (ip_vs_proc_conn). Expirer runs the backup sync daemon on the loopback
// device for as long as it is open, and sends it, as a master would, each
// entry with a timeout of one second. Neither moby/ipvs nor netlink
// libraries have the daemon calls or the message format; both are small
// and written here (the genetlink commands as ipvsadm sends them, the
// message as ip_vs_sync.c reads it). Tried by hand in the kernel VM first:
// a TIME_WAIT entry with 119 s left was gone 2.3 s after the message.
//
// While it is open any process of the node's network namespace can send
// the daemon messages that change IPVS's entries (receiving is bound to
// lo, so nothing from outside the node): the migration opens it only
// while it drains ipvs, at most drainBound.
type Expirer struct {
	ns string
	fd int // the UDP socket the messages leave from
	// running: the daemon runs as this Expirer's, to stop on Close
	// (never someone else's, found running at Open); adopted: it was
	// already running, left by an earlier proxier's drain that ended
	// without stopping it.
	running, adopted bool
}

// IPVS's generic netlink commands and attributes for its sync daemon
// (linux/ip_vs.h).
const (
	cmdNewDaemon = 9
	cmdDelDaemon = 10
	cmdGetDaemon = 11

	attrCmdDaemon = 3

	attrDaemonState      = 1
	attrDaemonMcastIfn   = 2
	attrDaemonSyncID     = 3
	attrDaemonMcastPort  = 7
	daemonStateBackup    = 2
	syncProtoVersion     = 1
	syncConnFlagInactive = 0x0100 // IP_VS_CONN_F_INACTIVE
	syncTypeIPv6         = 1      // STYPE_F_INET6
)

const (
	// expireDevice is where the daemon listens: the node's loopback, so
	// that only the node itself can reach it.
	expireDevice = "lo"
	// expirePort is the daemon's UDP port, not IPVS's default 8848: a
	// backup daemon found on lo at this port is one an earlier proxier's
	// drain left behind (it is adopted and stopped), any other is an
	// operator's (left alone, and nothing is expired).
	expirePort = 18848
	// expireTimeout is the timeout the messages give an entry: the
	// shortest there is (0 means "the state's default").
	expireTimeout = 1
	// maxConnsPerMessage: a message counts its entries in one byte.
	maxConnsPerMessage = 255
)

// syncGroup is the multicast group the daemon joins: IPVS's default.
var syncGroup = [4]byte{224, 0, 0, 81}

// ErrSyncDaemonBusy is OpenExpirer's answer where someone else's backup
// sync daemon already runs in the namespace: the kernel runs one.
var ErrSyncDaemonBusy = errors.New("IPVS's backup sync daemon already runs here, not started by this proxier")

// OpenExpirer starts IPVS's backup sync daemon on lo in network namespace
// ns ("" = this one) and opens the socket Expire sends from.
func OpenExpirer(ns string) (*Expirer, error) {
	e := &Expirer{ns: ns, fd: -1}
	err := netns.Do(ns, func() error {
		// lo needs no MULTICAST flag for this (a new namespace's lo
		// has none, and the kernel VM test passes there), so it is left
		// as it is.
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("UDP socket: %w", err)
		}
		e.fd = fd
		// Out through lo, from 127.0.0.1.
		return unix.SetsockoptInet4Addr(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, [4]byte{127, 0, 0, 1})
	})
	if err == nil {
		err = e.startDaemon()
	}
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("expire IPVS entries through the sync daemon in namespace %q: %w", ns, err)
	}
	return e, nil
}

// startDaemon starts the backup daemon, or adopts the one an earlier
// proxier left (same device, same port).
func (e *Expirer) startDaemon() error {
	_, err := daemonRequest(e.ns, cmdNewDaemon, unix.NLM_F_ACK,
		nl.NewRtAttr(attrDaemonState, nl.Uint32Attr(daemonStateBackup)),
		nl.NewRtAttr(attrDaemonMcastIfn, nl.ZeroTerminated(expireDevice)),
		nl.NewRtAttr(attrDaemonSyncID, nl.Uint32Attr(0)),
		nl.NewRtAttr(attrDaemonMcastPort, nl.Uint16Attr(expirePort)))
	if err == nil {
		e.running = true
	}
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	found, gerr := backupDaemon(e.ns)
	if gerr != nil {
		return fmt.Errorf("%w (%w)", ErrSyncDaemonBusy, gerr)
	}
	if found.device != expireDevice || found.port != expirePort {
		return fmt.Errorf("%w (on %s, port %d, sync id %d)", ErrSyncDaemonBusy, found.device, found.port, found.syncID)
	}
	e.running, e.adopted = true, true
	return nil
}

// Adopted says the daemon was already running, left by an earlier
// proxier's drain.
func (e *Expirer) Adopted() bool { return e.adopted }

// Close stops the daemon and closes the socket.
func (e *Expirer) Close() error {
	if e.fd >= 0 {
		unix.Close(e.fd)
		e.fd = -1
	}
	if !e.running {
		return nil
	}
	e.running = false
	return stopDaemon(e.ns)
}

// stopDaemon stops the backup sync daemon of namespace ns; one already
// stopped is no error.
func stopDaemon(ns string) error {
	_, err := daemonRequest(ns, cmdDelDaemon, unix.NLM_F_ACK,
		nl.NewRtAttr(attrDaemonState, nl.Uint32Attr(daemonStateBackup)))
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("stop IPVS's backup sync daemon on %s: %w", expireDevice, err)
	}
	return nil
}

// stopLeftExpirer stops the backup sync daemon a proxier's drain left
// running in namespace ns (it stopped before it could close it), so that
// --cleanup leaves nothing of this mode behind; someone else's daemon is
// left alone.
func stopLeftExpirer(ns string) error {
	d, err := backupDaemon(ns)
	if err != nil || d.device != expireDevice || d.port != expirePort {
		return nil // none, or not ours
	}
	if err := stopDaemon(ns); err != nil {
		return err
	}
	klog.InfoS("Stopped the IPVS sync daemon a proxier's drain left running", "device", expireDevice, "port", expirePort)
	return nil
}

// Expire tells the kernel to expire conns within about a second, and
// returns how many it sent (entries of a protocol or state the sync
// protocol has no number for are left). An entry must be given as the
// connection table lists it: the kernel ignores a message whose real
// server is not the entry's.
func (e *Expirer) Expire(conns []Conn) (int, error) {
	sent := 0
	for _, msg := range syncMessages(conns, expireTimeout) {
		to := &unix.SockaddrInet4{Port: expirePort, Addr: syncGroup}
		if err := unix.Sendto(e.fd, msg.data, 0, to); err != nil {
			return sent, fmt.Errorf("send to IPVS's sync daemon: %w", err)
		}
		sent += msg.conns
	}
	return sent, nil
}

// syncMessage is one datagram of the sync protocol, version 1.
type syncMessage struct {
	data  []byte
	conns int
}

// The IPVS states as /proc/net/ip_vs_conn names them, by their number
// in the sync protocol (IP_VS_TCP_S_*, IP_VS_UDP_S_NORMAL).
var (
	tcpStates = map[string]uint16{
		"NONE": 0, "ESTABLISHED": 1, "SYN_SENT": 2, "SYN_RECV": 3, "FIN_WAIT": 4, "TIME_WAIT": 5,
		"CLOSE": 6, "CLOSE_WAIT": 7, "LAST_ACK": 8, "LISTEN": 9, "SYNACK": 10,
	}
	udpStates = map[string]uint16{"UDP": 0}
)

// syncMessages encodes conns, each with timeout (seconds), as a master
// would send them (struct ip_vs_sync_mesg and ip_vs_sync_v4/v6, network
// order), at most maxConnsPerMessage to a datagram.
func syncMessages(conns []Conn, timeout uint32) []syncMessage {
	var out []syncMessage
	var cur syncMessage
	flush := func() {
		if cur.conns == 0 {
			return
		}
		binary.BigEndian.PutUint16(cur.data[2:], uint16(len(cur.data)))
		cur.data[4] = byte(cur.conns)
		out = append(out, cur)
		cur = syncMessage{}
	}
	for _, c := range conns {
		var proto byte
		var state uint16
		var ok bool
		flags := uint32(syncConnFlagInactive)
		switch c.Proto {
		case "TCP":
			proto = unix.IPPROTO_TCP
			state, ok = tcpStates[c.State]
			if state == tcpStates["ESTABLISHED"] {
				flags = 0
			}
		case "UDP":
			proto = unix.IPPROTO_UDP
			state, ok = udpStates[c.State]
		}
		v6 := c.Client.Addr().Is6() && !c.Client.Addr().Is4In6()
		if !ok || v6 != (c.Virtual.Addr().Is6() && !c.Virtual.Addr().Is4In6()) {
			continue
		}
		if cur.data == nil {
			// Header: reserved 0, sync id 0, size, count, version, spare.
			cur.data = []byte{0, 0, 0, 0, 0, syncProtoVersion, 0, 0}
		}
		size, typ := 36, byte(0)
		if v6 {
			size, typ = 72, syncTypeIPv6
		}
		b := cur.data
		b = append(b, typ, proto)
		b = binary.BigEndian.AppendUint16(b, uint16(size)) // version 0 in the top 4 bits
		b = binary.BigEndian.AppendUint32(b, flags)
		b = binary.BigEndian.AppendUint16(b, state)
		b = binary.BigEndian.AppendUint16(b, c.Client.Port())
		b = binary.BigEndian.AppendUint16(b, c.Virtual.Port())
		b = binary.BigEndian.AppendUint16(b, c.Real.Port())
		b = binary.BigEndian.AppendUint32(b, 0) // fwmark
		b = binary.BigEndian.AppendUint32(b, timeout)
		for _, a := range []netip.Addr{c.Client.Addr(), c.Virtual.Addr(), c.Real.Addr()} {
			if v6 {
				a16 := a.As16()
				b = append(b, a16[:]...)
			} else {
				b = append(b, a.Unmap().AsSlice()...)
			}
		}
		cur.data = b
		cur.conns++
		if cur.conns == maxConnsPerMessage {
			flush()
		}
	}
	flush()
	return out
}

// syncDaemon is what the kernel says of a running sync daemon.
type syncDaemon struct {
	device string
	port   uint16
	syncID uint32
}

// backupDaemon reads the backup sync daemon running in namespace ns.
func backupDaemon(ns string) (syncDaemon, error) {
	msgs, err := daemonRequest(ns, cmdGetDaemon, unix.NLM_F_DUMP)
	if err != nil {
		return syncDaemon{}, fmt.Errorf("read IPVS's sync daemons: %w", err)
	}
	for _, m := range msgs {
		if len(m) < nl.SizeofGenlmsg {
			continue
		}
		top, err := nl.ParseRouteAttr(m[nl.SizeofGenlmsg:])
		if err != nil {
			continue
		}
		for _, a := range top {
			if a.Attr.Type&nl.NLA_TYPE_MASK != attrCmdDaemon {
				continue
			}
			attrs, err := nl.ParseRouteAttr(a.Value)
			if err != nil {
				continue
			}
			d, backup := syncDaemon{port: 8848}, false
			for _, da := range attrs {
				switch da.Attr.Type & nl.NLA_TYPE_MASK {
				case attrDaemonState:
					backup = len(da.Value) >= 4 && binary.NativeEndian.Uint32(da.Value) == daemonStateBackup
				case attrDaemonMcastIfn:
					d.device = string(trimNul(da.Value))
				case attrDaemonSyncID:
					if len(da.Value) >= 4 {
						d.syncID = binary.NativeEndian.Uint32(da.Value)
					}
				case attrDaemonMcastPort:
					if len(da.Value) >= 2 {
						d.port = binary.NativeEndian.Uint16(da.Value)
					}
				}
			}
			if backup {
				return d, nil
			}
		}
	}
	return syncDaemon{}, errors.New("the kernel lists no backup sync daemon")
}

func trimNul(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}

// daemonRequest sends one of IPVS's sync daemon commands in namespace ns,
// the attributes nested in IPVS_CMD_ATTR_DAEMON, and returns the answers
// (a dump's messages, without their netlink header).
func daemonRequest(ns string, cmd uint8, flags int, attrs ...*nl.RtAttr) ([][]byte, error) {
	family, err := ipvsFamily()
	if err != nil {
		return nil, err
	}
	var out [][]byte
	err = netns.Do(ns, func() error {
		req := nl.NewNetlinkRequest(int(family), flags)
		req.AddData(&nl.Genlmsg{Command: cmd, Version: 1})
		if len(attrs) > 0 {
			d := nl.NewRtAttr(attrCmdDaemon, nil)
			for _, a := range attrs {
				d.AddChild(a)
			}
			req.AddData(d)
		}
		var err error
		out, err = req.Execute(unix.NETLINK_GENERIC, 0)
		return err
	})
	return out, err
}
