package nftables

import (
	"context"
	"errors"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"
)

// Cleanup deletes the kube-proxy table of both families. A table that is
// not there is fine, so it is safe to run twice or before any Sync.
func (p *Proxier) Cleanup(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, f := range []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol} {
		nft := p.opts.NFT
		if fs, ok := p.fams[f]; ok {
			nft = fs.nft
		} else if nft == nil {
			var err error
			if nft, err = openKernel(ctx, p.opts.NetNS, f); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		tx := nft.NewTransaction()
		tx.Delete(&knftables.Table{})
		if err := nft.Run(ctx, tx); err != nil && !knftables.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete table %s %s: %w", f, tableName, err))
		}
		if fs, ok := p.fams[f]; ok {
			fs.reset()
			fs.resetBase = true
		}
	}
	return errors.Join(errs...)
}
