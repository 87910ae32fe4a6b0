package ipvs

import (
	"encoding/binary"
	"fmt"
	"net"
	"sync"

	"github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
)

// opKind is one IPVS write; the values are the generic netlink commands
// (IPVS_CMD_* in linux/ip_vs.h).
type opKind uint8

const (
	opNewService    opKind = 1
	opUpdateService opKind = 2
	opDelService    opKind = 3
	opNewDest       opKind = 5
	opUpdateDest    opKind = 6
	opDelDest       opKind = 7
)

// ipvsOp is one write: a virtual server, and a real server for the
// destination kinds.
type ipvsOp struct {
	kind opKind
	svc  *ipvs.Service
	dest *ipvs.Destination
}

// do performs op as a single call.
func (op ipvsOp) do(h Interface) error {
	switch op.kind {
	case opNewService:
		return h.NewService(op.svc)
	case opUpdateService:
		return h.UpdateService(op.svc)
	case opDelService:
		return h.DelService(op.svc)
	case opNewDest:
		return h.NewDestination(op.svc, op.dest)
	case opUpdateDest:
		return h.UpdateDestination(op.svc, op.dest)
	case opDelDest:
		return h.DelDestination(op.svc, op.dest)
	}
	return fmt.Errorf("unknown IPVS operation %d", op.kind)
}

// IPVS attributes (linux/ip_vs.h), as moby/ipvs sends them.
const (
	attrCmdService = 1
	attrCmdDest    = 2

	attrSvcAF        = 1
	attrSvcProtocol  = 2
	attrSvcAddr      = 3
	attrSvcPort      = 4
	attrSvcFWMark    = 5
	attrSvcSchedName = 6
	attrSvcFlags     = 7
	attrSvcTimeout   = 8
	attrSvcNetmask   = 9
	attrSvcPEName    = 11

	attrDestAddr      = 1
	attrDestPort      = 2
	attrDestFwdMethod = 3
	attrDestWeight    = 4
	attrDestUThresh   = 5
	attrDestLThresh   = 6
)

func rawIP(ip net.IP) []byte {
	if v4 := ip.To4(); v4 != nil {
		return v4
	}
	return ip
}

// encode builds the request moby/ipvs would send for op, attribute for
// attribute (its fillService and fillDestination), for generic netlink
// family id family. Flags and sequence number are the batch's.
func (op ipvsOp) encode(family uint16) []byte {
	req := nl.NewNetlinkRequest(int(family), 0)
	req.AddData(&nl.Genlmsg{Command: uint8(op.kind), Version: 1})
	s := op.svc
	sa := nl.NewRtAttr(attrCmdService, nil)
	sa.AddRtAttr(attrSvcAF, nl.Uint16Attr(s.AddressFamily))
	if s.FWMark != 0 {
		sa.AddRtAttr(attrSvcFWMark, nl.Uint32Attr(s.FWMark))
	} else {
		sa.AddRtAttr(attrSvcProtocol, nl.Uint16Attr(s.Protocol))
		sa.AddRtAttr(attrSvcAddr, rawIP(s.Address))
		sa.AddRtAttr(attrSvcPort, binary.BigEndian.AppendUint16(nil, s.Port))
	}
	sa.AddRtAttr(attrSvcSchedName, nl.ZeroTerminated(s.SchedName))
	if s.PEName != "" {
		sa.AddRtAttr(attrSvcPEName, nl.ZeroTerminated(s.PEName))
	}
	// struct ip_vs_flags: the flags, then the mask of those to set.
	flags := binary.NativeEndian.AppendUint32(nil, s.Flags)
	sa.AddRtAttr(attrSvcFlags, binary.NativeEndian.AppendUint32(flags, 0xffffffff))
	sa.AddRtAttr(attrSvcTimeout, nl.Uint32Attr(s.Timeout))
	sa.AddRtAttr(attrSvcNetmask, nl.Uint32Attr(s.Netmask))
	req.AddData(sa)
	if d := op.dest; d != nil {
		da := nl.NewRtAttr(attrCmdDest, nil)
		da.AddRtAttr(attrDestAddr, rawIP(d.Address))
		da.AddRtAttr(attrDestPort, binary.BigEndian.AppendUint16(nil, d.Port))
		da.AddRtAttr(attrDestFwdMethod, nl.Uint32Attr(d.ConnectionFlags&ipvs.ConnectionFlagFwdMask))
		da.AddRtAttr(attrDestWeight, nl.Uint32Attr(uint32(d.Weight)))
		da.AddRtAttr(attrDestUThresh, nl.Uint32Attr(d.UpperThreshold))
		da.AddRtAttr(attrDestLThresh, nl.Uint32Attr(d.LowerThreshold))
		req.AddData(da)
	}
	return req.Serialize()
}

// The IPVS generic netlink family id is the same in every namespace.
var (
	familyOnce sync.Once
	familyID   uint16
	familyErr  error
)

func ipvsFamily() (uint16, error) {
	familyOnce.Do(func() {
		f, err := netlink.GenlFamilyGet("IPVS")
		if err != nil {
			familyErr = fmt.Errorf("generic netlink family IPVS: %w", err)
			return
		}
		familyID = f.ID
	})
	return familyID, familyErr
}

// writeQueue carries the IPVS writes of a sync. Through a batchWriter it
// collects them and sends them in batches; otherwise (the Fake, small
// partial syncs) each runs at once. Either way each op's done runs with
// its outcome, in the order the ops were added: in batch mode after the
// whole batch, so an op's done must not assume the ops after it are not
// yet sent.
type writeQueue struct {
	h    Interface
	bw   batchWriter
	ops  []ipvsOp
	done []func(error)
}

// queueLimit bounds the ops (and their memory) waiting for a flush.
const queueLimit = 4096

func newWriteQueue(h Interface, batch bool) *writeQueue {
	q := &writeQueue{h: h}
	if batch {
		q.bw, _ = h.(batchWriter)
	}
	return q
}

// batching reports whether ops wait for flush.
func (q *writeQueue) batching() bool { return q.bw != nil }

func (q *writeQueue) add(op ipvsOp, done func(error)) {
	if q.bw == nil {
		done(op.do(q.h))
		return
	}
	q.ops = append(q.ops, op)
	q.done = append(q.done, done)
	if len(q.ops) >= queueLimit {
		q.flush()
	}
}

// flush sends what waits and runs the dones.
func (q *writeQueue) flush() {
	if len(q.ops) == 0 {
		return
	}
	ops, done := q.ops, q.done
	q.ops, q.done = nil, nil
	errs := q.bw.applyBatch(ops)
	for i, d := range done {
		d(errs[i])
	}
}
