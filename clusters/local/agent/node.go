package agent

import (
	"context"
	"fmt"
	"runtime"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

const (
	leaseNamespace = "kube-node-lease"
	leaseDuration  = 40 // seconds, the kubelet's default
	agentVersion   = "v1.34.4-proxyproof-local"
)

// registerNode creates the Node, or takes over the one a previous run of
// the agent left, retrying until the API server answers.
func (a *Agent) registerNode(ctx context.Context) error {
	return wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name: a.cfg.NodeName,
				Labels: map[string]string{
					"kubernetes.io/hostname": a.cfg.NodeName,
					"kubernetes.io/os":       "linux",
					"kubernetes.io/arch":     runtime.GOARCH,
				},
			},
			Status: a.nodeStatus(nil),
		}
		_, err := a.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err == nil || apierrors.IsAlreadyExists(err) {
			klog.InfoS("Node registered", "node", a.cfg.NodeName, "existed", err != nil)
			return true, nil
		}
		klog.ErrorS(err, "Registering node failed; retrying", "node", a.cfg.NodeName)
		return false, nil
	})
}

// nodeStatus is the status the agent reports; prev keeps condition
// transition times.
func (a *Agent) nodeStatus(prev *corev1.NodeStatus) corev1.NodeStatus {
	now := metav1.Now()
	capacity := corev1.ResourceList{
		corev1.ResourcePods:   resource.MustParse("110"),
		corev1.ResourceCPU:    resource.MustParse("2"),
		corev1.ResourceMemory: resource.MustParse("4Gi"),
	}
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
		Reason: "KubeletReady", Message: "node agent is posting ready status"}
	if msg := a.notReady(); msg != "" {
		ready.Status, ready.Reason, ready.Message = corev1.ConditionFalse, "KubeletNotReady", msg
	}
	conds := []corev1.NodeCondition{
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "no memory pressure"},
		{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "no disk pressure"},
		{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "sufficient PID available"},
		ready,
	}
	for i := range conds {
		conds[i].LastHeartbeatTime = now
		conds[i].LastTransitionTime = now
		if prev == nil {
			continue
		}
		for _, p := range prev.Conditions {
			if p.Type == conds[i].Type && p.Status == conds[i].Status {
				conds[i].LastTransitionTime = p.LastTransitionTime
			}
		}
	}
	return corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity.DeepCopy(),
		Conditions:  conds,
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: a.cfg.NodeIP},
			{Type: corev1.NodeHostName, Address: a.cfg.NodeName},
		},
		NodeInfo: corev1.NodeSystemInfo{
			OperatingSystem:         "linux",
			Architecture:            runtime.GOARCH,
			KubeletVersion:          agentVersion,
			ContainerRuntimeVersion: "proxyproof-local://" + agentVersion,
		},
	}
}

// updateNodeStatus writes the heartbeat (and readiness) through nodes/status.
func (a *Agent) updateNodeStatus(ctx context.Context) error {
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		node, err := a.client.CoreV1().Nodes().Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		st := a.nodeStatus(&node.Status)
		st.Images, st.VolumesInUse, st.VolumesAttached = node.Status.Images, node.Status.VolumesInUse, node.Status.VolumesAttached
		node.Status = st
		_, err = a.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("node %s status: %w", a.cfg.NodeName, err)
	}
	return nil
}

// heartbeat renews the Lease every LeaseInterval and the Node status every
// StatusInterval, or at once when kicked (readiness changed).
func (a *Agent) heartbeat(ctx context.Context) {
	lease := time.NewTicker(a.cfg.LeaseInterval)
	defer lease.Stop()
	status := time.NewTicker(a.cfg.StatusInterval)
	defer status.Stop()
	a.renewLease(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-lease.C:
			a.renewLease(ctx)
		case <-status.C:
		case <-a.statusKick:
		}
		if err := a.updateNodeStatus(ctx); err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "Node status update failed", "node", a.cfg.NodeName)
		}
	}
}

// renewLease creates or renews the node's Lease in kube-node-lease: the
// node lifecycle controller judges the node alive by it.
func (a *Agent) renewLease(ctx context.Context) {
	leases := a.client.CoordinationV1().Leases(leaseNamespace)
	now := metav1.NewMicroTime(time.Now())
	l, err := leases.Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Namespace: leaseNamespace},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(a.cfg.NodeName),
				LeaseDurationSeconds: ptr.To[int32](leaseDuration),
				RenewTime:            &now,
			},
		}
		if node, err := a.client.CoreV1().Nodes().Get(ctx, a.cfg.NodeName, metav1.GetOptions{}); err == nil {
			l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
		}
		_, err = leases.Create(ctx, l, metav1.CreateOptions{})
		if err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "Creating node lease failed", "node", a.cfg.NodeName)
		}
	case err != nil:
		if ctx.Err() == nil {
			klog.ErrorS(err, "Reading node lease failed", "node", a.cfg.NodeName)
		}
	default:
		l.Spec.RenewTime = &now
		l.Spec.HolderIdentity = ptr.To(a.cfg.NodeName)
		l.Spec.LeaseDurationSeconds = ptr.To[int32](leaseDuration)
		if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "Renewing node lease failed", "node", a.cfg.NodeName)
		}
	}
}
