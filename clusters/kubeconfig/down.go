package kubeconfig

import (
	"context"
	"fmt"

	"k8s.io/client-go/kubernetes"
)

// Down removes, from the cluster path and context reach, what runs of
// the suite left: every namespace labelled as a run's whose holder
// process is gone (all: every run's, wherever it ran). It returns the
// runs it removed; it touches nothing else.
func Down(ctx context.Context, path, context string, all bool) ([]string, error) {
	a, err := load(path, context)
	if err != nil {
		return nil, err
	}
	if err := a.check(ctx, false); err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(a.cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: client: %w", a, err)
	}
	runs, err := cleanLeftovers(ctx, client, all)
	if err != nil {
		return runs, err
	}
	for _, run := range runs {
		if err := waitRunGone(ctx, client, run); err != nil {
			return runs, err
		}
	}
	return runs, nil
}
