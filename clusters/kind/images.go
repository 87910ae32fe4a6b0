package kind

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path"
	"sync"

	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
)

// loadImages puts images from the local Docker engine into every node's
// containerd, nodes in parallel, so the kubelet never pulls them.
func loadImages(ctx context.Context, nodeList []nodes.Node, images []string) error {
	var wg sync.WaitGroup
	errs := make([]error, len(nodeList))
	for i, n := range nodeList {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, img := range images {
				if err := loadImage(ctx, n, img); err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// loadImage streams `docker save image` into the node's containerd.
func loadImage(ctx context.Context, n nodes.Node, image string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // a failed import must not leave docker save blocked on the pipe
	save := exec.CommandContext(ctx, "docker", "save", image)
	var stderr bytes.Buffer
	save.Stderr = &stderr
	archive, err := save.StdoutPipe()
	if err != nil {
		return err
	}
	if err := save.Start(); err != nil {
		return fmt.Errorf("image %s: docker save: %w", image, err)
	}
	loadErr := nodeutils.LoadImageArchive(n, archive)
	if loadErr != nil {
		cancel()
	}
	if err := save.Wait(); err != nil && loadErr == nil {
		return fmt.Errorf("image %s: docker save: %w: %s", image, err, bytes.TrimSpace(stderr.Bytes()))
	}
	if loadErr != nil {
		return fmt.Errorf("node %s: load image %s: %w", n, image, loadErr)
	}
	return nil
}

// installProbe copies the probe program out of image (the netserver's,
// which carries it for pods) onto every node at probePath, so ExecOnNode
// runs the very binary pods run.
func installProbe(ctx context.Context, cluster, image string, nodeNames []string) error {
	// A stopped container to copy from, labelled so Down removes it after a crash.
	holder := cluster + "-probe"
	if _, err := docker(ctx, "create", "--name", holder, "--label", labelCluster+"="+cluster, image); err != nil {
		return fmt.Errorf("probe from image %s: %w", image, err)
	}
	defer func() { _, _ = docker(context.WithoutCancel(ctx), "rm", "--force", holder) }()
	// docker cp to "-" writes a tar archive, which docker cp from "-"
	// unpacks with the file's mode.
	archive, err := docker(ctx, "cp", holder+":"+probePath, "-")
	if err != nil {
		return fmt.Errorf("probe from image %s: %w", image, err)
	}
	for _, n := range nodeNames {
		cmd := exec.CommandContext(ctx, "docker", "cp", "-", n+":"+path.Dir(probePath))
		cmd.Stdin = bytes.NewReader(archive)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("node %s: copy %s: %w: %s", n, probePath, err, bytes.TrimSpace(out))
		}
	}
	return nil
}
