package kind

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
)

// ExecInPod runs cmd in the first container of pod ns/name through the
// API (the kubelet's exec, as kubectl exec does), and returns its
// combined output. The suite's pods run the netserver image, which
// carries netprobe on its PATH.
func (c *Cluster) ExecInPod(ctx context.Context, ns, name string, cmd ...string) ([]byte, error) {
	if len(cmd) == 0 {
		return nil, errors.New("exec: empty command")
	}
	cfg, err := c.RestConfig()
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: client: %w", c.Name(), err)
	}
	pod, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", ns, name, err)
	}
	if len(pod.Spec.Containers) == 0 {
		return nil, fmt.Errorf("pod %s/%s has no container", ns, name)
	}
	req := client.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(name).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: pod.Spec.Containers[0].Name,
			Command:   cmd,
			Stdout:    true,
			Stderr:    true,
		}, scheme.ParameterCodec)
	// WebSocket first, SPDY where the server cannot upgrade: kubectl's order.
	ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", req.URL().String())
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: exec: %w", ns, name, err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(cfg, "POST", req.URL())
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: exec: %w", ns, name, err)
	}
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: exec: %w", ns, name, err)
	}
	var out lockedBuffer
	err = exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &out})
	if err != nil {
		return out.Bytes(), fmt.Errorf("pod %s/%s: %s: %w: %s", ns, name, strings.Join(cmd, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return out.Bytes(), nil
}
