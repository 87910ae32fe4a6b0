// Package podexec runs a command in a pod's container through the API
// server (the kubelet's exec, as kubectl exec does): the one way into a
// pod that works on every cluster the suite reaches, its own or not.
package podexec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
)

// Exec runs cmd in container of pod ns/name (the pod's first container
// when container is empty) and returns its combined output.
func Exec(ctx context.Context, cfg *rest.Config, ns, name, container string, cmd ...string) ([]byte, error) {
	if len(cmd) == 0 {
		return nil, errors.New("exec: empty command")
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: client: %w", ns, name, err)
	}
	if container == "" {
		pod, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("pod %s/%s: %w", ns, name, err)
		}
		if len(pod.Spec.Containers) == 0 {
			return nil, fmt.Errorf("pod %s/%s has no container", ns, name)
		}
		container = pod.Spec.Containers[0].Name
	}
	req := client.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(name).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: container,
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
	var out Output
	err = exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &out})
	if err != nil {
		return out.Bytes(), fmt.Errorf("pod %s/%s: %s: %w: %s", ns, name, strings.Join(cmd, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return out.Bytes(), nil
}

// Output collects a command's stdout and stderr, which arrive
// concurrently (pod exec here, node exec in clusters/kind).
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Output) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Output) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.b.Bytes()...)
}
