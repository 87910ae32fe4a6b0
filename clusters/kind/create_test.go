package kind

import (
	"errors"
	"strings"
	"testing"

	kinderrors "sigs.k8s.io/kind/pkg/errors"
	kindexec "sigs.k8s.io/kind/pkg/exec"
)

// A failed kubeadm init, as kind returns it: a RunError with kubeadm's
// output, wrapped.
func kubeadmFailure() error {
	out := `[init] Using Kubernetes version: v1.34.4
[wait-control-plane] Waiting for the kubelet to boot up the control plane
error: error execution phase wait-control-plane: failed while waiting for the control plane to start: kube-apiserver check failed
k8s.io/kubernetes/cmd/kubeadm/app/cmd/phases/workflow.(*Runner).Run.func1
	k8s.io/kubernetes@v1.34.4/cmd/kubeadm/app/cmd/phases/workflow/runner.go:262
main.main
	k8s.io/kubernetes@v1.34.4/cmd/kubeadm/kubeadm.go:25
`
	run := &kindexec.RunError{Command: []string{"docker", "exec", "kubeadm", "init"}, Output: []byte(out), Inner: errors.New("exit status 1")}
	return kinderrors.Wrap(run, "failed to init node with kubeadm")
}

func TestAKindFailureCarriesKubeadmsReasonWithoutTheStackTrace(t *testing.T) {
	got := commandOutput(kubeadmFailure())
	if !strings.Contains(got, "error execution phase wait-control-plane") {
		t.Errorf("output %q lacks kubeadm's reason", got)
	}
	if strings.Contains(got, "runner.go") || strings.Contains(got, "main.main") {
		t.Errorf("output %q keeps the Go stack trace", got)
	}
	if commandOutput(errors.New("plain")) != "" {
		t.Error("an error without a command has output")
	}
}

func TestOnlyKindsFinalKubeconfigExportFailureIsTolerated(t *testing.T) {
	export := kinderrors.Wrap(&kindexec.RunError{Command: []string{"docker", "inspect"}, Inner: errors.New("exit status 1")}, "failed to get api server port")
	if !exportFailedOnly(export) {
		t.Errorf("%v not taken for the export failure an internal network causes", export)
	}
	if exportFailedOnly(kubeadmFailure()) {
		t.Error("a kubeadm failure was tolerated")
	}
}
