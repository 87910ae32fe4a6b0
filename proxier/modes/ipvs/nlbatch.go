package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// batchSocket sends many netlink requests in one sendmsg. The kernel runs
// the requests of a buffer one after the other inside that sendmsg, each
// as if sent alone, and queues their answers before sendmsg returns.
//
// Only the last request of a buffer asks for an acknowledgement: the
// kernel answers a failing request with an error message whether or not
// it asked (netlink_rcv_skb), so silence means success, and every answer
// is its own datagram: an acknowledgement per request would cost a
// recvmsg per request, most of what batching saves.
type batchSocket struct {
	fd  int
	seq uint32
}

const (
	// batchBytes bounds one sendmsg: the kernel refuses a message larger
	// than the send buffer (212,992 bytes by default).
	batchBytes = 128 << 10
	// batchRcvBuf holds the error answers of a buffer of failures (each
	// a small skb, NETLINK_CAP_ACK); past it the kernel drops answers.
	batchRcvBuf = 4 << 20
)

// openBatchSocket opens a netlink socket of protocol proto in namespace ns.
func openBatchSocket(ns string, proto int) (*batchSocket, error) {
	var s *batchSocket
	err := netns.Do(ns, func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return fmt.Errorf("netlink socket: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind netlink socket: %w", err)
		}
		// An error answer then carries the request's header only.
		_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, batchRcvBuf) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, batchRcvBuf)
		}
		// A kernel that never answers must not hang the sync.
		tv := unix.NsecToTimeval(int64(30e9))
		_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		s = &batchSocket{fd: fd}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("netlink batch socket in namespace %q: %w", ns, err)
	}
	return s, nil
}

func (s *batchSocket) close() {
	if s != nil && s.fd >= 0 {
		unix.Close(s.fd)
		s.fd = -1
	}
}

// errUnknownOutcome marks a request whose answer was lost: the kernel ran
// out of receive buffer for error answers.
var errUnknownOutcome = errors.New("outcome unknown: netlink answers were dropped (receive buffer overrun)")

// exec sends reqs, each one serialized netlink request (its flags and
// sequence number are set here), in as few sendmsg calls as batchBytes
// allows, and returns the outcome of each: nil or the kernel's errno.
func (s *batchSocket) exec(reqs [][]byte) []error {
	errs := make([]error, len(reqs))
	buf := make([]byte, 0, batchBytes)
	for first := 0; first < len(reqs); {
		buf = buf[:0]
		last := first
		for last < len(reqs) && (last == first || len(buf)+len(reqs[last]) <= batchBytes) {
			buf = append(buf, reqs[last]...)
			last++
		}
		s.round(buf, reqs[first:last], errs[first:last])
		first = last
	}
	return errs
}

// round sends one buffer of requests and collects their answers into errs.
func (s *batchSocket) round(buf []byte, reqs [][]byte, errs []error) {
	base := s.seq + 1
	s.seq += uint32(len(reqs))
	off := 0
	for i, r := range reqs {
		flags := uint16(unix.NLM_F_REQUEST) | binary.NativeEndian.Uint16(r[6:8])&^unix.NLM_F_ACK
		if i == len(reqs)-1 {
			flags |= unix.NLM_F_ACK
		}
		binary.NativeEndian.PutUint16(buf[off+6:], flags)
		binary.NativeEndian.PutUint32(buf[off+8:], base+uint32(i))
		binary.NativeEndian.PutUint32(buf[off+12:], 0) // to the kernel
		off += len(r)
	}
	if err := unix.Sendto(s.fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("netlink send: %w", err)
		}
		return
	}
	lastSeq := base + uint32(len(reqs)) - 1
	answered := make([]bool, len(reqs))
	rbuf := make([]byte, 64<<10)
	overrun, done := false, false
	for !done {
		flags := 0
		if overrun {
			// Everything was queued before sendmsg returned: an empty
			// queue now means the rest is lost.
			flags = unix.MSG_DONTWAIT
		}
		n, _, err := unix.Recvfrom(s.fd, rbuf, flags)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOBUFS):
			overrun = true
			continue
		case err != nil:
			// Timeout, or empty after an overrun.
			for i := range errs {
				if !answered[i] {
					if overrun {
						errs[i] = errUnknownOutcome
					} else {
						errs[i] = fmt.Errorf("netlink receive: %w", err)
					}
				}
			}
			return
		}
		msgs, err := syscall.ParseNetlinkMessage(rbuf[:n])
		if err != nil {
			continue
		}
		for _, m := range msgs {
			seq := m.Header.Seq
			if m.Header.Type != unix.NLMSG_ERROR || seq < base || seq > lastSeq || len(m.Data) < 4 {
				continue // a late answer to an earlier round
			}
			i := seq - base
			answered[i] = true
			if code := int32(binary.NativeEndian.Uint32(m.Data[:4])); code != 0 {
				errs[i] = syscall.Errno(-code)
			}
			if seq == lastSeq {
				done = true
			}
		}
	}
	if overrun {
		// Requests before the last that got no answer may have failed.
		for i := range errs {
			if !answered[i] {
				errs[i] = errUnknownOutcome
			}
		}
	}
}
