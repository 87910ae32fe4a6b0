package agent

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// ownedConditions are the pod conditions the agent sets; others (the
// scheduler's PodScheduled, DisruptionTarget, readiness gates) are kept.
var ownedConditions = []corev1.PodConditionType{
	corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady,
}

// status computes the pod's status from what runs; prev supplies the
// transition times of conditions that did not change.
func (w *worker) status(pod *corev1.Pod) corev1.PodStatus {
	st := corev1.PodStatus{
		Phase:     corev1.PodPending,
		HostIP:    w.a.cfg.NodeIP,
		HostIPs:   []corev1.HostIP{{IP: w.a.cfg.NodeIP}},
		StartTime: &w.startTime,
		QOSClass:  pod.Status.QOSClass,
	}
	if w.ip.IsValid() {
		st.PodIP = w.ip.String()
		st.PodIPs = []corev1.PodIP{{IP: st.PodIP}}
	}
	allReady, anyRunning, allDone, allSucceeded := true, false, true, true
	for i := range pod.Spec.Containers {
		spec := &pod.Spec.Containers[i]
		cs := w.containerStatus(pod, spec)
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		allReady = allReady && cs.Ready
		anyRunning = anyRunning || cs.State.Running != nil
		if t := cs.State.Terminated; t == nil || w.willRestart(pod, spec.Name) {
			allDone = false
		} else if t.ExitCode != 0 {
			allSucceeded = false
		}
	}
	switch {
	case allDone && allSucceeded:
		st.Phase = corev1.PodSucceeded
	case allDone:
		st.Phase = corev1.PodFailed
	case anyRunning || w.startedAny():
		st.Phase = corev1.PodRunning
	}
	if st.Phase != corev1.PodRunning {
		allReady = false
	}
	gatesReady := true
	for _, g := range pod.Spec.ReadinessGates {
		if c := condition(pod.Status.Conditions, g.ConditionType); c == nil || c.Status != corev1.ConditionTrue {
			gatesReady = false
		}
	}
	set := map[corev1.PodConditionType]bool{
		corev1.PodReadyToStartContainers: w.sb != nil,
		corev1.PodInitialized:            true,
		corev1.ContainersReady:           allReady,
		corev1.PodReady:                  allReady && gatesReady,
	}
	for _, c := range pod.Status.Conditions {
		if !owned(c.Type) {
			st.Conditions = append(st.Conditions, c)
		}
	}
	for _, t := range ownedConditions {
		st.Conditions = append(st.Conditions, w.cond(pod, t, set[t]))
	}
	return st
}

func (w *worker) startedAny() bool {
	for _, c := range w.containers {
		if c.run > 0 {
			return true
		}
	}
	return false
}

func (w *worker) willRestart(pod *corev1.Pod, name string) bool {
	c := w.containers[name]
	return c != nil && !w.terminating && restarts(pod.Spec.RestartPolicy, c.last)
}

func (w *worker) containerStatus(pod *corev1.Pod, spec *corev1.Container) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: spec.Name, Image: spec.Image, Started: ptr.To(false)}
	c := w.containers[spec.Name]
	switch {
	case w.unknown == spec.Image:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull",
			Message: fmt.Sprintf("Container image %q is not present with pull policy of Never (known images: %s)", spec.Image, w.a.cfg.knownImages())}
		return cs
	case c == nil:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating", Message: w.sandboxErr}
		return cs
	}
	cs.ImageID = "proxyproof-local://" + c.program
	cs.RestartCount = c.restarts
	if c.last != nil {
		cs.LastTerminationState.Terminated = terminated(c, c.last)
	}
	switch {
	case c.proc != nil && !c.proc.exited():
		cs.ContainerID = containerID(w, c)
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.proc.started)}
		cs.Started = ptr.To(true)
		cs.Ready = c.ready != nil && c.ready.Load()
		cs.LastTerminationState = corev1.ContainerState{}
		if c.restarts > 0 && c.last != nil {
			cs.LastTerminationState.Terminated = terminated(c, c.last)
		}
	case c.last != nil && w.willRestart(pod, spec.Name):
		msg := fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", time.Until(c.next).Round(time.Second), c.name, pod.Name)
		if c.startErr != "" {
			msg = c.startErr
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: msg}
	case c.last != nil:
		cs.ContainerID = containerID(w, c)
		cs.State.Terminated = terminated(c, c.last)
		cs.LastTerminationState = corev1.ContainerState{}
	default:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating", Message: w.sandboxErr}
	}
	return cs
}

func containerID(w *worker, c *container) string {
	return fmt.Sprintf("proxyproof-local://%s-%s-%d", w.uid, c.name, c.run)
}

func terminated(c *container, p *proc) *corev1.ContainerStateTerminated {
	reason := "Completed"
	if p.exitCode != 0 {
		reason = "Error"
	}
	if c.startErr != "" {
		reason = "StartError"
	}
	return &corev1.ContainerStateTerminated{
		ExitCode: p.exitCode, Reason: reason, Message: c.startErr,
		StartedAt: metav1.NewTime(p.started), FinishedAt: metav1.NewTime(p.finished),
	}
}

func owned(t corev1.PodConditionType) bool {
	for _, o := range ownedConditions {
		if o == t {
			return true
		}
	}
	return false
}

func condition(cs []corev1.PodCondition, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range cs {
		if cs[i].Type == t {
			return &cs[i]
		}
	}
	return nil
}

// cond builds condition t, keeping the transition time while its status
// stays what the pod already says.
func (w *worker) cond(pod *corev1.Pod, t corev1.PodConditionType, ok bool) corev1.PodCondition {
	s := corev1.ConditionFalse
	if ok {
		s = corev1.ConditionTrue
	}
	c := corev1.PodCondition{Type: t, Status: s, LastTransitionTime: metav1.Now()}
	if prev := condition(pod.Status.Conditions, t); prev != nil && prev.Status == s {
		c.LastTransitionTime = prev.LastTransitionTime
	} else if w.lastStatus != nil {
		if prev := condition(w.lastStatus.Conditions, t); prev != nil && prev.Status == s {
			c.LastTransitionTime = prev.LastTransitionTime
		}
	}
	if !ok && (t == corev1.PodReady || t == corev1.ContainersReady) {
		c.Reason = "ContainersNotReady"
	}
	return c
}

// pushStatus writes the status through pods/status when it changed.
func (w *worker) pushStatus(ctx context.Context, pod *corev1.Pod) {
	st := w.status(pod)
	if w.lastStatus != nil && apiequality.Semantic.DeepEqual(*w.lastStatus, withoutWaitingMessages(st)) {
		return
	}
	cur := pod
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		if cur == nil {
			got, err := w.a.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			cur = got
		}
		if cur.UID != pod.UID {
			return apierrors.NewNotFound(corev1.Resource("pods"), pod.Name)
		}
		next := cur.DeepCopy()
		next.Status = w.status(cur)
		cur = nil // a conflict means the informer's copy is stale
		_, err := w.a.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		if !apierrors.IsNotFound(err) && ctx.Err() == nil {
			klog.ErrorS(err, "Pod status update failed; retrying", "pod", klog.KObj(pod))
			w.wakeAt(time.Now().Add(time.Second))
		}
		return
	}
	last := withoutWaitingMessages(st)
	w.lastStatus = &last
}

// withoutWaitingMessages drops the ticking back-off message from the
// comparison, so a countdown alone does not cause a write.
func withoutWaitingMessages(st corev1.PodStatus) corev1.PodStatus {
	st = *st.DeepCopy()
	for i := range st.ContainerStatuses {
		if w := st.ContainerStatuses[i].State.Waiting; w != nil && w.Reason == "CrashLoopBackOff" {
			w.Message = ""
		}
	}
	return st
}
