package nftables

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// nftaGenID is NFTA_GEN_ID: the ruleset generation in a NEWGEN message.
const nftaGenID = 1

// sendGetGen asks for the ruleset generation; the NEWGEN reply comes after
// the replies to everything sent before it.
func (c *nlConn) sendGetGen(seq uint32) error {
	var q nlBatch
	off := q.header(nfnlSubsysNFTables<<8|nftMsgGetGen, unix.NLM_F_REQUEST, unix.AF_UNSPEC, 0, seq)
	q.finish(off)
	if err := sendAll(c.fd, q.buf.b); err != nil {
		return fmt.Errorf("send nftables getgen: %w", err)
	}
	return nil
}

// generation asks the kernel for the netns's nftables ruleset generation,
// which every commit by anyone bumps: unchanged since our last commit
// means nobody has touched any table since, ours included.
func (c *nlConn) generation() (uint32, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	seq := c.seq
	if err := c.sendGetGen(seq); err != nil {
		return 0, err
	}
	var (
		gen   uint32
		found bool
		qErr  error
	)
	err := c.recv(func(typ uint16, s uint32, data []byte) bool {
		if s != seq {
			return false
		}
		if typ == unix.NLMSG_ERROR {
			if len(data) >= 4 {
				if code := int32(binary.NativeEndian.Uint32(data)); code != 0 {
					qErr = syscall.Errno(-code)
				}
			}
			return true
		}
		if typ != nfnlSubsysNFTables<<8|nftMsgNewGen || len(data) < 4 {
			return false
		}
		for attrs := data[4:]; len(attrs) >= 4; {
			l := int(binary.NativeEndian.Uint16(attrs))
			if l < 4 || l > len(attrs) {
				break
			}
			if binary.NativeEndian.Uint16(attrs[2:])&^nlaFNested == nftaGenID && l >= 8 {
				gen, found = binary.BigEndian.Uint32(attrs[4:8]), true
			}
			attrs = attrs[min((l+3)&^3, len(attrs)):]
		}
		return true
	})
	switch {
	case err != nil:
		return 0, err
	case qErr != nil:
		return 0, fmt.Errorf("nftables getgen: %w", qErr)
	case !found:
		return 0, fmt.Errorf("nftables getgen: reply without a generation")
	}
	return gen, nil
}
