package nftables

import (
	"bytes"
	"fmt"
	"testing"
)

// A large batch is written outside the Go heap, and what it holds must not
// depend on where: the same messages as on the heap, also when the hint was
// too short and the buffer moved to the heap half way.
func TestAMappedBatchHoldsWhatAHeapBatchHolds(t *testing.T) {
	fill := func(b *nlBatch, chains int) []byte {
		for i := range chains {
			b.addChain(fmt.Sprintf("service-%08d-ns/name/tcp/http", i))
		}
		return bytes.Clone(b.bytes())
	}
	for _, tc := range []struct {
		name   string
		chains int
	}{
		{"within the hint", 1000},
		{"beyond the hint", 40000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			heap := fill(newNLBatch(2, tableName, 0), tc.chains)
			b := newNLBatch(2, tableName, offHeapMin)
			if b.mapped == nil {
				t.Fatalf("a batch hinted at %d bytes is on the heap", offHeapMin)
			}
			if got := fill(b, tc.chains); !bytes.Equal(got, heap) {
				t.Errorf("the mapped batch differs from the heap one (%d and %d bytes)", len(got), len(heap))
			}
			b.release()
			if b.mapped != nil || b.buf.b != nil {
				t.Errorf("release left the buffer in place")
			}
		})
	}
	if b := newNLBatch(2, tableName, offHeapMin-1); b.mapped != nil {
		t.Errorf("a batch hinted below %d bytes is mapped", offHeapMin)
	}
}
