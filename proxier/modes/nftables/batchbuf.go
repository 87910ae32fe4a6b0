package nftables

import "golang.org/x/sys/unix"

// offHeapMin is the size hint from which a batch's buffer is mapped outside
// the Go heap: in practice, full syncs of a few hundred Services or more.
//
// A full sync's batch is the mode's largest allocation (15.7 MB at 10,000 x
// 10) and lives only until the kernel has it. On the heap it raised the
// GC's goal by a quarter of its size while the sync ran and, still live at
// the collection that ended the sync, kept the goal that high until the
// next one: the heap then grew into that room with ordinary garbage, and
// peak RSS paid for the batch about one and a half times. Mapped, it is
// returned to the kernel as soon as the kernel has read it.
const offHeapMin = 1 << 20

// mapBuf returns an empty buffer with room for size bytes outside the Go
// heap, or nil when the mapping fails (the heap then serves, as before).
// Pages cost memory only once written.
func mapBuf(size int) []byte {
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil
	}
	return b[:0]
}

// unmapBuf gives back a buffer from mapBuf; nothing may use it afterwards.
func unmapBuf(b []byte) {
	_ = unix.Munmap(b[:cap(b)])
}
