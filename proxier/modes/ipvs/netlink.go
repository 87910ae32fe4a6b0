package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// dummyDevice is upstream's interface holding every Service address.
const dummyDevice = "kube-ipvs0"

// nlHandle is a netlink handle (route and netfilter sockets) opened in a
// namespace on first use and kept: a sync makes thousands of calls.
type nlHandle struct {
	ns   string
	once sync.Once
	h    *netlink.Handle
	err  error
}

func (n *nlHandle) get() (*netlink.Handle, error) {
	n.once.Do(func() {
		ns, err := netns.Handle(n.ns)
		if err != nil {
			n.err = err
			return
		}
		defer ns.Close()
		n.h, n.err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE, unix.NETLINK_NETFILTER)
		if n.err != nil {
			n.err = fmt.Errorf("netlink in namespace %q: %w", n.ns, n.err)
		}
	})
	return n.h, n.err
}

// Links is the seam for the dummy interface and the node's addresses.
type Links interface {
	// EnsureDummy creates the dummy interface name, up, unless it exists.
	EnsureDummy(name string) error
	// DeleteDummy removes it; a missing one is fine.
	DeleteDummy(name string) error
	// Addrs lists the addresses on name; a missing link has none.
	Addrs(name string) ([]netip.Addr, error)
	AddAddr(name string, a netip.Addr) error
	DelAddr(name string, a netip.Addr) error
	// NodeAddresses lists the addresses of every link but except, of
	// the mode's family: the candidates for NodePorts.
	NodeAddresses(except string) ([]netip.Addr, error)
}

type netlinkLinks struct {
	ns     string
	family v1.IPFamily
	nl     nlHandle
	// link caches the dummy interface: a full sync binds thousands of
	// addresses to it.
	link netlink.Link
	// batch is the socket of addAddrs, opened on first use.
	batch    *batchSocket
	batchErr error
}

// addrBatcher is a Links that can also bind many addresses at once.
type addrBatcher interface {
	// addAddrs is AddAddr for each of addrs, in one go; the errors are
	// AddAddr's, one per address.
	addAddrs(name string, addrs []netip.Addr) []error
}

var _ addrBatcher = &netlinkLinks{}

// linkByName returns name's link, from the cache when it is the dummy.
func (l *netlinkLinks) linkByName(h *netlink.Handle, name string) (netlink.Link, error) {
	if l.link != nil && l.link.Attrs().Name == name {
		return l.link, nil
	}
	link, err := h.LinkByName(name)
	if err == nil {
		l.link = link
	}
	return link, err
}

func (l *netlinkLinks) handle() (*netlink.Handle, error) {
	l.nl.ns = l.ns
	return l.nl.get()
}

func (l *netlinkLinks) fam() int {
	if l.family == v1.IPv6Protocol {
		return netlink.FAMILY_V6
	}
	return netlink.FAMILY_V4
}

func (l *netlinkLinks) EnsureDummy(name string) error {
	l.link = nil // a full sync starts from the kernel's truth
	h, err := l.handle()
	if err != nil {
		return err
	}
	link, err := h.LinkByName(name)
	if err != nil {
		if !errors.As(err, &netlink.LinkNotFoundError{}) {
			return fmt.Errorf("interface %s: %w", name, err)
		}
		link = &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name}}
		if err := h.LinkAdd(link); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create dummy interface %s: %w", name, err)
		}
	}
	// Upstream leaves it down: local routes to its addresses exist anyway.
	return nil
}

func (l *netlinkLinks) DeleteDummy(name string) error {
	l.link = nil
	h, err := l.handle()
	if err != nil {
		return err
	}
	link, err := h.LinkByName(name)
	if err != nil {
		if errors.As(err, &netlink.LinkNotFoundError{}) {
			return nil
		}
		return fmt.Errorf("interface %s: %w", name, err)
	}
	if link.Type() != "dummy" {
		return fmt.Errorf("interface %s is a %s, not the dummy interface this mode made; left alone", name, link.Type())
	}
	if err := h.LinkDel(link); err != nil {
		return fmt.Errorf("delete interface %s: %w", name, err)
	}
	return nil
}

func (l *netlinkLinks) Addrs(name string) ([]netip.Addr, error) {
	h, err := l.handle()
	if err != nil {
		return nil, err
	}
	link, err := h.LinkByName(name)
	if err != nil {
		if errors.As(err, &netlink.LinkNotFoundError{}) {
			return nil, nil
		}
		return nil, fmt.Errorf("interface %s: %w", name, err)
	}
	addrs, err := h.AddrList(link, l.fam())
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", name, err)
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}

func hostNet(a netip.Addr) *net.IPNet {
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}
}

func (l *netlinkLinks) AddAddr(name string, a netip.Addr) error {
	h, err := l.handle()
	if err != nil {
		return err
	}
	link, err := l.linkByName(h, name)
	if err != nil {
		return fmt.Errorf("interface %s: %w", name, err)
	}
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: hostNet(a)}); err != nil && !errors.Is(err, unix.EEXIST) {
		l.link = nil // it may have been recreated under another index
		return fmt.Errorf("add %s to %s: %w", a, name, err)
	}
	return nil
}

// addAddrs sends the RTM_NEWADDR requests vishvananda/netlink's AddrAdd
// would (a host prefix, IFA_LOCAL and IFA_ADDRESS, no broadcast), many
// per sendmsg.
func (l *netlinkLinks) addAddrs(name string, addrs []netip.Addr) []error {
	errs := make([]error, len(addrs))
	fail := func(err error) []error {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	h, err := l.handle()
	if err != nil {
		return fail(err)
	}
	link, err := l.linkByName(h, name)
	if err != nil {
		return fail(fmt.Errorf("interface %s: %w", name, err))
	}
	if l.batch == nil && l.batchErr == nil {
		l.batch, l.batchErr = openBatchSocket(l.ns, unix.NETLINK_ROUTE)
	}
	if l.batchErr != nil {
		return fail(l.batchErr)
	}
	reqs := make([][]byte, len(addrs))
	for i, a := range addrs {
		req := nl.NewNetlinkRequest(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL)
		fam := unix.AF_INET
		if a.Is6() {
			fam = unix.AF_INET6
		}
		msg := nl.NewIfAddrmsg(fam)
		msg.Index = uint32(link.Attrs().Index)
		msg.Prefixlen = uint8(a.BitLen())
		req.AddData(msg)
		req.AddData(nl.NewRtAttr(unix.IFA_LOCAL, a.AsSlice()))
		req.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, a.AsSlice()))
		reqs[i] = req.Serialize()
	}
	for i, err := range l.batch.exec(reqs) {
		if err != nil && !errors.Is(err, unix.EEXIST) {
			l.link = nil // it may have been recreated under another index
			errs[i] = fmt.Errorf("add %s to %s: %w", addrs[i], name, err)
		}
	}
	return errs
}

func (l *netlinkLinks) DelAddr(name string, a netip.Addr) error {
	h, err := l.handle()
	if err != nil {
		return err
	}
	link, err := l.linkByName(h, name)
	if err != nil {
		if errors.As(err, &netlink.LinkNotFoundError{}) {
			return nil
		}
		return fmt.Errorf("interface %s: %w", name, err)
	}
	if err := h.AddrDel(link, &netlink.Addr{IPNet: hostNet(a)}); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENXIO) {
		l.link = nil
		return fmt.Errorf("remove %s from %s: %w", a, name, err)
	}
	return nil
}

func (l *netlinkLinks) NodeAddresses(except string) ([]netip.Addr, error) {
	h, err := l.handle()
	if err != nil {
		return nil, err
	}
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var out []netip.Addr
	for _, link := range links {
		if link.Attrs().Name == except {
			continue
		}
		addrs, err := h.AddrList(link, l.fam())
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", link.Attrs().Name, err)
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out, nil
}

// netlinkIPSet speaks the ipset netlink protocol in the mode's namespace.
type netlinkIPSet struct {
	ns string
	nl nlHandle
	// batch is the socket of addEntries, opened on first use.
	batch    *batchSocket
	batchErr error
}

// entryBatcher is an IPSetter that can also add many entries at once.
type entryBatcher interface {
	// addEntries is Add for each of es, in one go; the errors are Add's,
	// one per entry.
	addEntries(set string, es []Entry) []error
}

var _ entryBatcher = &netlinkIPSet{}

// addEntries sends the IPSET_CMD_ADD requests vishvananda/netlink's
// IpsetAdd would for Add, many per sendmsg. bitmap:port sets take the
// one-by-one path (see portEntry).
func (s *netlinkIPSet) addEntries(set string, es []Entry) []error {
	errs := make([]error, len(es))
	if setType(set) == typeBitmapPort {
		for i, e := range es {
			errs[i] = s.Add(set, e)
		}
		return errs
	}
	if s.batch == nil && s.batchErr == nil {
		s.batch, s.batchErr = openBatchSocket(s.ns, unix.NETLINK_NETFILTER)
	}
	if s.batchErr != nil {
		for i := range errs {
			errs[i] = s.batchErr
		}
		return errs
	}
	reqs := make([][]byte, len(es))
	for i, e := range es {
		reqs[i] = ipsetAddRequest(set, toNetlink(e))
	}
	for i, err := range s.batch.exec(reqs) {
		if errno, ok := err.(syscall.Errno); ok && int(errno) >= nl.IPSET_ERR_PRIVATE {
			err = nl.IPSetError(uintptr(errno))
		}
		if err != nil && err != nl.IPSetError(nl.IPSET_ERR_EXIST) {
			errs[i] = fmt.Errorf("ipset add %s %s: %w", set, es[i], err)
		}
	}
	return errs
}

// ipsetAddRequest is IpsetAdd's request for the fields toNetlink sets
// (Replace: no NLM_F_EXCL).
func ipsetAddRequest(set string, n *netlink.IPSetEntry) []byte {
	req := nl.NewNetlinkRequest(nl.IPSET_CMD_ADD|(unix.NFNL_SUBSYS_IPSET<<8), 0)
	req.AddData(&nl.Nfgenmsg{NfgenFamily: uint8(unix.AF_NETLINK), Version: nl.NFNETLINK_V0})
	req.AddData(nl.NewRtAttr(nl.IPSET_ATTR_PROTOCOL, nl.Uint8Attr(nl.IPSET_PROTOCOL)))
	req.AddData(nl.NewRtAttr(nl.IPSET_ATTR_SETNAME, nl.ZeroTerminated(set)))
	data := nl.NewRtAttr(nl.IPSET_ATTR_DATA|int(nl.NLA_F_NESTED), nil)
	ip := func(a net.IP) []byte {
		typ := int(nl.NLA_F_NET_BYTEORDER)
		if v4 := a.To4(); v4 != nil {
			return nl.NewRtAttr(typ|nl.IPSET_ATTR_IPADDR_IPV4, v4).Serialize()
		}
		return nl.NewRtAttr(typ|nl.IPSET_ATTR_IPADDR_IPV6, a).Serialize()
	}
	if n.IP != nil {
		data.AddChild(nl.NewRtAttr(nl.IPSET_ATTR_IP|int(nl.NLA_F_NESTED), ip(n.IP)))
	}
	if n.IP2 != nil {
		data.AddChild(nl.NewRtAttr(nl.IPSET_ATTR_IP2|int(nl.NLA_F_NESTED), ip(n.IP2)))
	}
	if n.CIDR2 != 0 {
		data.AddChild(nl.NewRtAttr(nl.IPSET_ATTR_CIDR2, nl.Uint8Attr(n.CIDR2)))
	}
	if n.Port != nil {
		proto := uint8(unix.IPPROTO_TCP)
		if n.Protocol != nil {
			proto = *n.Protocol
		}
		data.AddChild(nl.NewRtAttr(nl.IPSET_ATTR_PROTO, nl.Uint8Attr(proto)))
		data.AddChild(nl.NewRtAttr(int(nl.IPSET_ATTR_PORT|nl.NLA_F_NET_BYTEORDER), binary.BigEndian.AppendUint16(nil, *n.Port)))
	}
	data.AddChild(&nl.Uint32Attribute{Type: nl.IPSET_ATTR_LINENO | nl.NLA_F_NET_BYTEORDER, Value: 0})
	req.AddData(data)
	return req.Serialize()
}

func (s *netlinkIPSet) handle() (*netlink.Handle, error) {
	s.nl.ns = s.ns
	return s.nl.get()
}

func (s *netlinkIPSet) Create(set, typ string, family uint8) error {
	h, err := s.handle()
	if err != nil {
		return err
	}
	if _, err := h.IpsetList(set); err == nil {
		return nil
	}
	opts := netlink.IpsetCreateOptions{Family: family}
	if typ == typeBitmapPort {
		opts.PortFrom, opts.PortTo = 0, 65535
	}
	if err := h.IpsetCreate(set, typ, opts); err != nil {
		return fmt.Errorf("create ipset %s (%s): %w", set, typ, err)
	}
	return nil
}

func (s *netlinkIPSet) Destroy(set string) error {
	h, err := s.handle()
	if err != nil {
		return err
	}
	if err := h.IpsetDestroy(set); err != nil && !errors.Is(err, unix.ENOENT) {
		if _, lerr := h.IpsetList(set); lerr != nil {
			return nil // gone, whatever the first error said
		}
		return fmt.Errorf("destroy ipset %s: %w", set, err)
	}
	return nil
}

func toNetlink(e Entry) *netlink.IPSetEntry {
	n := &netlink.IPSetEntry{Replace: true}
	if e.IP.IsValid() {
		n.IP = net.IP(e.IP.AsSlice())
	}
	if e.Port != 0 {
		port := e.Port
		n.Port = &port
		// A bitmap:port entry has no protocol of its own; netlink then
		// sends TCP, which the kernel accepts for any port set.
		if e.Protocol != 0 {
			proto := e.Protocol
			n.Protocol = &proto
		}
	}
	if e.IP2.IsValid() {
		n.IP2 = net.IP(e.IP2.AsSlice())
	}
	if e.Net.IsValid() {
		n.IP2 = net.IP(e.Net.Addr().AsSlice())
		n.CIDR2 = uint8(e.Net.Bits())
	}
	return n
}

// portEntry adds or deletes a bitmap:port entry. It builds the request
// itself: vishvananda/netlink always sends a protocol with a port, which
// the kernel's bitmap:port refuses ("invalid protocol"). Without
// NLM_F_EXCL an existing (add) or missing (del) entry is no error.
func (s *netlinkIPSet) portEntry(cmd int, set string, port uint16) error {
	return netns.Do(s.ns, func() error {
		req := nl.NewNetlinkRequest(cmd|(unix.NFNL_SUBSYS_IPSET<<8), nl.GetIpsetFlags(cmd))
		req.AddData(&nl.Nfgenmsg{NfgenFamily: uint8(unix.AF_NETLINK), Version: nl.NFNETLINK_V0})
		req.AddData(nl.NewRtAttr(nl.IPSET_ATTR_PROTOCOL, nl.Uint8Attr(nl.IPSET_PROTOCOL)))
		req.AddData(nl.NewRtAttr(nl.IPSET_ATTR_SETNAME, nl.ZeroTerminated(set)))
		data := nl.NewRtAttr(nl.IPSET_ATTR_DATA|int(nl.NLA_F_NESTED), nil)
		data.AddChild(nl.NewRtAttr(int(nl.IPSET_ATTR_PORT|nl.NLA_F_NET_BYTEORDER), binary.BigEndian.AppendUint16(nil, port)))
		data.AddChild(&nl.Uint32Attribute{Type: nl.IPSET_ATTR_LINENO | nl.NLA_F_NET_BYTEORDER, Value: 0})
		req.AddData(data)
		_, err := req.Execute(unix.NETLINK_NETFILTER, 0)
		if errno, ok := err.(syscall.Errno); ok && int(errno) >= nl.IPSET_ERR_PRIVATE {
			err = nl.IPSetError(uintptr(errno))
		}
		if err != nil {
			return fmt.Errorf("ipset %s %s %d: %w", map[int]string{nl.IPSET_CMD_ADD: "add", nl.IPSET_CMD_DEL: "del"}[cmd], set, port, err)
		}
		return nil
	})
}

func (s *netlinkIPSet) Add(set string, e Entry) error {
	if setType(set) == typeBitmapPort {
		return s.portEntry(nl.IPSET_CMD_ADD, set, e.Port)
	}
	h, err := s.handle()
	if err != nil {
		return err
	}
	if err := h.IpsetAdd(set, toNetlink(e)); err != nil && err != nl.IPSetError(nl.IPSET_ERR_EXIST) {
		return fmt.Errorf("ipset add %s %s: %w", set, e, err)
	}
	return nil
}

func (s *netlinkIPSet) Del(set string, e Entry) error {
	if setType(set) == typeBitmapPort {
		return s.portEntry(nl.IPSET_CMD_DEL, set, e.Port)
	}
	h, err := s.handle()
	if err != nil {
		return err
	}
	if err := h.IpsetDel(set, toNetlink(e)); err != nil && err != nl.IPSetError(nl.IPSET_ERR_EXIST) {
		return fmt.Errorf("ipset del %s %s: %w", set, e, err)
	}
	return nil
}

func (s *netlinkIPSet) List(set string) ([]Entry, error) {
	h, err := s.handle()
	if err != nil {
		return nil, err
	}
	res, err := h.IpsetList(set)
	if err != nil {
		return nil, fmt.Errorf("ipset list %s: %w", set, err)
	}
	out := make([]Entry, 0, len(res.Entries))
	for _, n := range res.Entries {
		var e Entry
		if ip, ok := netip.AddrFromSlice(n.IP); ok {
			e.IP = ip.Unmap()
		}
		if n.Port != nil {
			e.Port = *n.Port
		}
		if n.Protocol != nil && res.TypeName != typeBitmapPort {
			e.Protocol = *n.Protocol
		}
		if ip2, ok := netip.AddrFromSlice(n.IP2); ok {
			if res.TypeName == typeHashIPPortNet {
				e.Net = netip.PrefixFrom(ip2.Unmap(), int(n.CIDR2))
			} else {
				e.IP2 = ip2.Unmap()
			}
		}
		out = append(out, e)
	}
	return out, nil
}
