package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// Constants of linux/netfilter/nfnetlink.h and nf_tables.h that the writer
// needs, spelled out so the encoding is readable next to the kernel header.
const (
	nfnlSubsysNFTables = 10
	nfnlMsgBatchBegin  = 0x10
	nfnlMsgBatchEnd    = 0x11

	nftMsgNewChain   = 3
	nftMsgGetChain   = 4
	nftMsgDelChain   = 5
	nftMsgNewRule    = 6
	nftMsgDelRule    = 8
	nftMsgNewSet     = 9
	nftMsgGetSet     = 10
	nftMsgDelSet     = 11
	nftMsgNewSetElem = 12
	nftMsgDelSetElem = 14
	nftMsgNewGen     = 15
	nftMsgGetGen     = 16

	nlaFNested = 0x8000
)

// nlbuf appends netlink attributes (nlattr: length, type, payload padded
// to 4 bytes) to a byte slice.
type nlbuf struct{ b []byte }

func (n *nlbuf) attr(typ uint16, data []byte) {
	l := 4 + len(data)
	n.b = binary.NativeEndian.AppendUint16(n.b, uint16(l))
	n.b = binary.NativeEndian.AppendUint16(n.b, typ)
	n.b = append(n.b, data...)
	n.pad()
}

func (n *nlbuf) pad() {
	for len(n.b)%4 != 0 {
		n.b = append(n.b, 0)
	}
}

func (n *nlbuf) str(typ uint16, s string) {
	l := 4 + len(s) + 1
	n.b = binary.NativeEndian.AppendUint16(n.b, uint16(l))
	n.b = binary.NativeEndian.AppendUint16(n.b, typ)
	n.b = append(n.b, s...)
	n.b = append(n.b, 0)
	n.pad()
}

func (n *nlbuf) be32(typ uint16, v uint32) {
	n.b = binary.NativeEndian.AppendUint16(n.b, 8)
	n.b = binary.NativeEndian.AppendUint16(n.b, typ)
	n.b = binary.BigEndian.AppendUint32(n.b, v)
}

func (n *nlbuf) be64(typ uint16, v uint64) {
	n.b = binary.NativeEndian.AppendUint16(n.b, 12)
	n.b = binary.NativeEndian.AppendUint16(n.b, typ)
	n.b = binary.BigEndian.AppendUint64(n.b, v)
}

// begin opens a nested attribute; end(off) patches its length.
func (n *nlbuf) begin(typ uint16) int {
	off := len(n.b)
	n.b = binary.NativeEndian.AppendUint16(n.b, 0)
	n.b = binary.NativeEndian.AppendUint16(n.b, typ|nlaFNested)
	return off
}

func (n *nlbuf) end(off int) {
	binary.NativeEndian.PutUint16(n.b[off:], uint16(len(n.b)-off))
}

// nlOp names one message of a batch, for error messages.
type nlOp struct {
	what string // "add rule", "delete chain", ...
	name string
	rule string // the rule's text, for "add rule"
}

// String is joined only when the kernel refuses the message: building it
// for every rule of a full sync cost allocations for nothing.
func (op nlOp) String() string {
	if op.rule != "" {
		return op.what + " " + op.name + ": " + op.rule
	}
	return op.what + " " + op.name
}

// nlBatch is one nftables transaction as netlink messages between
// BATCH_BEGIN and BATCH_END: the kernel applies all of it or none.
type nlBatch struct {
	fam   byte // NFPROTO_IPV4 / NFPROTO_IPV6
	table string
	buf   nlbuf
	ops   []nlOp // ops[i] is message seq i+1
	// open element message, coalescing consecutive elements of one set
	elemMsg, elemList int
	elemSet           string
	elemType          uint16
	// mapped is the buffer's memory when it is outside the Go heap (see
	// batchbuf.go), for release; buf leaves it if the hint was short.
	mapped []byte
}

func newNLBatch(fam byte, table string, sizeHint int) *nlBatch {
	b := &nlBatch{fam: fam, table: table, elemMsg: -1}
	if sizeHint >= offHeapMin {
		b.mapped = mapBuf(sizeHint)
		b.buf.b = b.mapped
	}
	if b.buf.b == nil {
		b.buf.b = make([]byte, 0, max(64<<10, sizeHint))
	}
	b.header(nfnlMsgBatchBegin, unix.NLM_F_REQUEST, unix.AF_UNSPEC, nfnlSubsysNFTables, 0)
	return b
}

// header starts a message: nlmsghdr + nfgenmsg; the length is patched by
// finish. It returns the message offset.
func (b *nlBatch) header(typ uint16, flags uint16, fam byte, resID uint16, seq uint32) int {
	off := len(b.buf.b)
	b.buf.b = binary.NativeEndian.AppendUint32(b.buf.b, 0)
	b.buf.b = binary.NativeEndian.AppendUint16(b.buf.b, typ)
	b.buf.b = binary.NativeEndian.AppendUint16(b.buf.b, flags)
	b.buf.b = binary.NativeEndian.AppendUint32(b.buf.b, seq)
	b.buf.b = binary.NativeEndian.AppendUint32(b.buf.b, 0)
	b.buf.b = append(b.buf.b, fam, 0)
	b.buf.b = binary.BigEndian.AppendUint16(b.buf.b, resID)
	if typ == nfnlMsgBatchBegin {
		b.finish(off)
	}
	return off
}

func (b *nlBatch) finish(off int) {
	binary.NativeEndian.PutUint32(b.buf.b[off:], uint32(len(b.buf.b)-off))
}

// msg starts an nf_tables message with the table attribute already in.
func (b *nlBatch) msg(typ uint16, flags uint16, op nlOp) int {
	b.closeElems()
	b.ops = append(b.ops, op)
	off := b.header(nfnlSubsysNFTables<<8|typ, unix.NLM_F_REQUEST|flags, b.fam, 0, uint32(len(b.ops)))
	b.buf.str(1, b.table) // NFTA_{CHAIN,RULE,SET,SET_ELEM_LIST}_TABLE
	return off
}

func (b *nlBatch) size() int { return len(b.ops) }

// release gives a mapped buffer back at once; the batch is empty and must
// not be used afterwards.
func (b *nlBatch) release() {
	b.buf.b, b.ops = nil, nil
	if b.mapped != nil {
		unmapBuf(b.mapped)
		b.mapped = nil
	}
}

func (b *nlBatch) addChain(name string) {
	off := b.msg(nftMsgNewChain, unix.NLM_F_CREATE, nlOp{what: "add chain", name: name})
	b.buf.str(3, name) // NFTA_CHAIN_NAME
	b.finish(off)
}

func (b *nlBatch) deleteChain(name string) {
	off := b.msg(nftMsgDelChain, 0, nlOp{what: "delete chain", name: name})
	b.buf.str(3, name)
	b.finish(off)
}

// flushChain is DELRULE with a chain and no handle: every rule goes.
func (b *nlBatch) flushChain(name string) {
	off := b.msg(nftMsgDelRule, 0, nlOp{what: "flush chain", name: name})
	b.buf.str(2, name) // NFTA_RULE_CHAIN
	b.finish(off)
}

func (b *nlBatch) addRule(chain string, r rule) {
	off := b.msg(nftMsgNewRule, unix.NLM_F_CREATE|unix.NLM_F_APPEND, nlOp{what: "add rule", name: chain, rule: r.text})
	b.buf.str(2, chain)
	exprs := b.buf.begin(4) // NFTA_RULE_EXPRESSIONS
	b.buf.b = append(b.buf.b, r.nl...)
	b.buf.end(exprs)
	if r.comment != "" {
		b.buf.attr(7, udataComment(r.comment)) // NFTA_RULE_USERDATA
	}
	b.finish(off)
}

// udataComment is libnftnl's userdata TLV for a comment (type 0), which
// both rules and set elements use.
func udataComment(c string) []byte {
	if len(c) > 253 {
		c = c[:253]
	}
	out := []byte{0, byte(len(c) + 1)}
	out = append(out, c...)
	return append(out, 0)
}

const (
	nftSetInterval = 0x4
	nftSetMap      = 0x8
	nftSetTimeout  = 0x10
	nftSetEval     = 0x20 // "dynamic"
)

// addAffinitySet creates a dynamic set of source addresses with a timeout.
func (b *nlBatch) addAffinitySet(a affinitySet, addrType uint32, addrLen uint32) {
	off := b.msg(nftMsgNewSet, unix.NLM_F_CREATE, nlOp{what: "add set", name: a.name})
	b.buf.str(2, a.name)                             // NFTA_SET_NAME
	b.buf.be32(3, nftSetTimeout|nftSetEval)          // NFTA_SET_FLAGS
	b.buf.be32(4, addrType)                          // NFTA_SET_KEY_TYPE
	b.buf.be32(5, addrLen)                           // NFTA_SET_KEY_LEN
	b.buf.be32(10, uint32(len(b.ops)))               // NFTA_SET_ID
	b.buf.be64(11, uint64(a.timeout.Milliseconds())) // NFTA_SET_TIMEOUT
	// NFTA_SET_USERDATA: key byte order big endian, as nft writes it.
	b.buf.attr(13, []byte{0, 4, 2, 0, 0, 0})
	b.finish(off)
}

// addEndpointsMap creates an interval map from a 32-bit draw to address .
// port (endpoint_maps.go); udata is nft's own description of it.
func (b *nlBatch) addEndpointsMap(name string, dataType, dataLen uint32, udata []byte) {
	off := b.msg(nftMsgNewSet, unix.NLM_F_CREATE, nlOp{what: "add map", name: name})
	b.buf.str(2, name)                      // NFTA_SET_NAME
	b.buf.be32(3, nftSetInterval|nftSetMap) // NFTA_SET_FLAGS
	b.buf.be32(4, 4)                        // NFTA_SET_KEY_TYPE: TYPE_INTEGER
	b.buf.be32(5, 4)                        // NFTA_SET_KEY_LEN
	b.buf.be32(6, dataType)                 // NFTA_SET_DATA_TYPE
	b.buf.be32(7, dataLen)                  // NFTA_SET_DATA_LEN
	b.buf.be32(10, uint32(len(b.ops)))      // NFTA_SET_ID
	b.buf.attr(13, udata)                   // NFTA_SET_USERDATA
	b.finish(off)
}

func (b *nlBatch) deleteSet(name string) {
	off := b.msg(nftMsgDelSet, 0, nlOp{what: "delete set", name: name})
	b.buf.str(2, name)
	b.finish(off)
}

// flushSet is DELSETELEM without elements: the set or map is emptied.
func (b *nlBatch) flushSet(name string) {
	off := b.msg(nftMsgDelSetElem, 0, nlOp{what: "flush", name: name})
	b.buf.str(2, name) // NFTA_SET_ELEM_LIST_SET
	b.finish(off)
}

// elemMsgMax keeps the nested element list under its 16-bit length.
const elemMsgMax = 60000

func (b *nlBatch) addElem(e elem)    { b.elem(nftMsgNewSetElem, unix.NLM_F_CREATE, e) }
func (b *nlBatch) deleteElem(e elem) { b.elem(nftMsgDelSetElem, 0, e) }

func (b *nlBatch) elem(typ uint16, flags uint16, e elem) {
	if b.elemMsg < 0 || b.elemSet != e.container || b.elemType != typ || len(b.buf.b)-b.elemList > elemMsgMax {
		what := "add element to"
		if typ == nftMsgDelSetElem {
			what = "delete element from"
		}
		off := b.msg(typ, flags, nlOp{what: what, name: e.container})
		b.buf.str(2, e.container)
		b.elemMsg, b.elemSet, b.elemType = off, e.container, typ
		b.elemList = b.buf.begin(3) // NFTA_SET_ELEM_LIST_ELEMENTS
	}
	el := b.buf.begin(1) // NFTA_LIST_ELEM
	key := b.buf.begin(1)
	b.buf.attr(1, []byte(e.nkey)) // NFTA_SET_ELEM_KEY / NFTA_DATA_VALUE
	b.buf.end(key)
	if e.nend != "" {
		// An interval: its start carries the value, its end is an element
		// of its own flagged NFT_SET_ELEM_INTERVAL_END.
		if typ == nftMsgNewSetElem {
			data := b.buf.begin(2) // NFTA_SET_ELEM_DATA
			b.buf.attr(1, []byte(e.data))
			b.buf.end(data)
		}
		b.buf.end(el)
		el = b.buf.begin(1)
		key = b.buf.begin(1)
		b.buf.attr(1, []byte(e.nend))
		b.buf.end(key)
		b.buf.be32(3, 1) // NFTA_SET_ELEM_FLAGS
		b.buf.end(el)
		return
	}
	if !e.isSet && typ == nftMsgNewSetElem {
		data := b.buf.begin(2) // NFTA_SET_ELEM_DATA
		v := b.buf.begin(2)    // NFTA_DATA_VERDICT
		b.buf.be32(1, uint32(e.verdict.code))
		if e.verdict.chain != "" {
			b.buf.str(2, e.verdict.chain)
		}
		b.buf.end(v)
		b.buf.end(data)
	}
	if e.comment != "" && typ == nftMsgNewSetElem {
		b.buf.attr(6, udataComment(e.comment)) // NFTA_SET_ELEM_USERDATA
	}
	b.buf.end(el)
}

func (b *nlBatch) closeElems() {
	if b.elemMsg < 0 {
		return
	}
	b.buf.end(b.elemList)
	b.finish(b.elemMsg)
	b.elemMsg = -1
}

// bytes ends the batch and returns it.
func (b *nlBatch) bytes() []byte {
	b.closeElems()
	off := b.header(nfnlMsgBatchEnd, unix.NLM_F_REQUEST, unix.AF_UNSPEC, nfnlSubsysNFTables, 0)
	b.finish(off)
	return b.buf.b
}

// nlConn is a netfilter netlink socket opened inside the proxier's network
// namespace; it stays there whatever thread later uses it.
type nlConn struct {
	mu     sync.Mutex
	fd     int
	sndbuf int
	seq    uint32
	rbuf   []byte // reused by every read, under mu
}

func openNL(ns string) (*nlConn, error) {
	var fd int
	err := netns.Do(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netfilter netlink socket in netns %q: %w", ns, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind netfilter netlink socket: %w", err)
	}
	// Errors carry only the failed message's header, and extended acks say
	// why in words.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	return &nlConn{fd: fd, seq: 1 << 24}, nil
}

func (c *nlConn) close() error { return unix.Close(c.fd) }

// run sends a batch in one sendmsg (the kernel processes it synchronously),
// then a GETGEN request: its reply comes after every error of the batch,
// so reading up to it collects them all without per-message acks.
func (c *nlConn) run(b *nlBatch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	buf := b.bytes()
	if need := len(buf) + 4096; need > c.sndbuf {
		if err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, need); err != nil {
			return fmt.Errorf("netlink send buffer of %d bytes: %w", need, err)
		}
		c.sndbuf = need
	}
	if err := sendAll(c.fd, buf); err != nil {
		return fmt.Errorf("send nftables batch of %d messages: %w", len(b.ops), err)
	}
	c.seq++
	genSeq := c.seq
	if err := c.sendGetGen(genSeq); err != nil {
		return err
	}
	var errs []error
	err := c.recv(func(typ uint16, seq uint32, data []byte) bool {
		if typ == unix.NLMSG_ERROR && len(data) >= 4 {
			code := int32(binary.NativeEndian.Uint32(data))
			if code == 0 {
				return seq == genSeq
			}
			e := error(syscall.Errno(-code))
			if msg := extackMsg(data); msg != "" {
				e = fmt.Errorf("%w (%s)", e, msg)
			}
			if seq >= 1 && int(seq) <= len(b.ops) {
				op := b.ops[seq-1]
				e = fmt.Errorf("%s: %w", op, e)
			}
			errs = append(errs, e)
			return seq == genSeq
		}
		return seq == genSeq && typ == nfnlSubsysNFTables<<8|nftMsgNewGen
	})
	if err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func sendAll(fd int, buf []byte) error {
	for {
		err := unix.Sendto(fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		if err == unix.EINTR {
			continue
		}
		return err
	}
}

// extackMsg finds NLMSGERR_ATTR_MSG in an error message with the
// original message capped (NETLINK_CAP_ACK): errno, then its header.
func extackMsg(data []byte) string {
	if len(data) < 20 {
		return ""
	}
	attrs := data[20:]
	for len(attrs) >= 4 {
		l := int(binary.NativeEndian.Uint16(attrs))
		t := binary.NativeEndian.Uint16(attrs[2:])
		if l < 4 || l > len(attrs) {
			return ""
		}
		if t == 1 { // NLMSGERR_ATTR_MSG
			s := attrs[4:l]
			for len(s) > 0 && s[len(s)-1] == 0 {
				s = s[:len(s)-1]
			}
			return string(s)
		}
		attrs = attrs[(l+3)&^3:]
	}
	return ""
}

// recv reads messages and hands them to fn until fn says done.
func (c *nlConn) recv(fn func(typ uint16, seq uint32, data []byte) (done bool)) error {
	if c.rbuf == nil {
		c.rbuf = make([]byte, 1<<20)
	}
	buf := c.rbuf
	for {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("read netlink: %w", err)
		}
		b := buf[:n]
		for len(b) >= unix.NLMSG_HDRLEN {
			l := int(binary.NativeEndian.Uint32(b))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return fmt.Errorf("read netlink: bad message length %d", l)
			}
			typ := binary.NativeEndian.Uint16(b[4:])
			seq := binary.NativeEndian.Uint32(b[8:])
			if fn(typ, seq, b[unix.NLMSG_HDRLEN:l]) {
				return nil
			}
			b = b[(l+3)&^3:]
		}
	}
}

// names dumps the names of the chains (or sets) of our table.
func (c *nlConn) names(fam byte, table string, what uint16) (map[string]bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	seq := c.seq
	var q nlBatch
	q.fam = fam
	off := q.header(nfnlSubsysNFTables<<8|what, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, fam, 0, seq)
	if what == nftMsgGetSet {
		q.buf.str(1, table) // NFTA_SET_TABLE filters the dump
	}
	q.finish(off)
	if err := sendAll(c.fd, q.buf.b); err != nil {
		return nil, fmt.Errorf("netlink dump request: %w", err)
	}
	out := map[string]bool{}
	nameAttr := uint16(3) // NFTA_CHAIN_NAME
	if what == nftMsgGetSet {
		nameAttr = 2 // NFTA_SET_NAME
	}
	var dumpErr error
	err := c.recv(func(typ uint16, s uint32, data []byte) bool {
		if s != seq {
			return false
		}
		switch typ {
		case unix.NLMSG_DONE:
			return true
		case unix.NLMSG_ERROR:
			if len(data) >= 4 {
				if code := int32(binary.NativeEndian.Uint32(data)); code != 0 {
					dumpErr = syscall.Errno(-code)
				}
			}
			return true
		}
		if len(data) < 4 {
			return false
		}
		var tbl, name string
		attrs := data[4:]
		for len(attrs) >= 4 {
			l := int(binary.NativeEndian.Uint16(attrs))
			t := binary.NativeEndian.Uint16(attrs[2:]) &^ nlaFNested
			if l < 4 || l > len(attrs) {
				break
			}
			v := attrs[4:l]
			if len(v) > 0 && v[len(v)-1] == 0 {
				v = v[:len(v)-1]
			}
			switch t {
			case 1:
				tbl = string(v)
			case nameAttr:
				name = string(v)
			}
			attrs = attrs[min((l+3)&^3, len(attrs)):]
		}
		if tbl == table {
			out[name] = true
		}
		return false
	})
	if err == nil {
		err = dumpErr
	}
	return out, err
}
