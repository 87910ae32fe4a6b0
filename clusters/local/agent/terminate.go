package agent

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// syncTerminating runs a deleted pod's shutdown: SIGTERM at once, probes
// and status going on meanwhile (endpoints see it turn unready), SIGKILL
// at the grace deadline, then network teardown and the final delete with
// grace 0 that lets the API server drop the object. True when done.
func (w *worker) syncTerminating(ctx context.Context, pod *corev1.Pod, gone bool) bool {
	if !w.terminating {
		w.terminating = true
		grace := gracePeriod(pod)
		if gone {
			grace = min(grace, w.a.cfg.ShutdownGrace)
		}
		w.deadline = time.Now().Add(grace)
		if ps := w.running(); len(ps) > 0 {
			for _, p := range ps {
				p.term()
			}
			w.a.recorder.Eventf(pod, corev1.EventTypeNormal, "Killing", "Stopping container(s) with grace period %s", grace)
			klog.InfoS("Stopping pod", "pod", klog.KObj(pod), "grace", grace, "processes", len(ps))
		}
	}
	if len(w.running()) > 0 {
		if time.Now().Before(w.deadline) {
			w.wakeAt(w.deadline)
			if !gone {
				w.pushStatus(ctx, pod)
			}
			return false
		}
		klog.InfoS("Grace period over; killing", "pod", klog.KObj(pod))
		w.killAll()
	}
	w.stopProbesAndReap(pod)
	if !gone {
		w.pushStatus(ctx, pod)
	}
	w.removeSandbox()
	if gone {
		return true
	}
	err := w.a.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		if ctx.Err() != nil {
			return true
		}
		klog.ErrorS(err, "Deleting terminated pod failed; retrying", "pod", klog.KObj(pod))
		w.wakeAt(time.Now().Add(time.Second))
		return false
	}
	klog.InfoS("Pod terminated and deleted", "pod", klog.KObj(pod))
	return true
}

// gracePeriod is the deletion's grace (the API server copies the spec's or
// the delete call's), else the spec's, else the default 30 s.
func gracePeriod(pod *corev1.Pod) time.Duration {
	if s := pod.DeletionGracePeriodSeconds; s != nil {
		return time.Duration(*s) * time.Second
	}
	if s := pod.Spec.TerminationGracePeriodSeconds; s != nil {
		return time.Duration(*s) * time.Second
	}
	return 30 * time.Second
}

// killAll SIGKILLs every running process and waits for them to be reaped.
func (w *worker) killAll() {
	ps := w.running()
	for _, p := range ps {
		p.kill()
	}
	for _, p := range ps {
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			klog.InfoS("Process survived SIGKILL for 10s", "pid", p.pid)
		}
	}
}

func (w *worker) stopProbesAndReap(pod *corev1.Pod) {
	for _, c := range w.containers {
		if c.stopProbes != nil {
			c.stopProbes()
		}
		if c.proc != nil && c.proc.exited() {
			w.reap(pod, c)
			c.next = time.Time{}
		}
	}
}

// shutdown is the agent stopping: the pod's processes get SIGTERM and a
// short grace, then SIGKILL, and the network goes. The API is left alone:
// the pod is still bound here, as with a kubelet that stops.
func (w *worker) shutdown() {
	if w.timer != nil {
		w.timer.Stop()
	}
	ps := w.running()
	for _, p := range ps {
		p.term()
	}
	timeout := time.NewTimer(w.a.cfg.ShutdownGrace)
	defer timeout.Stop()
wait:
	for _, p := range ps {
		select {
		case <-p.done:
		case <-timeout.C:
			break wait
		}
	}
	w.killAll()
	w.mu.Lock()
	pod := w.pod
	w.mu.Unlock()
	w.stopProbesAndReap(pod)
	w.removeSandbox()
}
