package agent

import (
	"context"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// worker owns one pod on this node, like a kubelet pod worker: every event
// (pod update, process exit, probe result, timer) kicks one sync that
// compares the pod with what runs and acts. Only the worker's goroutine
// changes its fields, except those under mu.
type worker struct {
	a    *Agent
	uid  types.UID
	kick chan struct{}

	mu   sync.Mutex
	pod  *corev1.Pod // latest from the informer
	gone bool        // the pod object was deleted

	sb         *sandbox
	ip         netip.Addr
	containers map[string]*container
	startTime  metav1.Time
	unknown    string // an image no program maps to
	warned     string // the unknown image an event was sent for

	sandboxErr   string
	sandboxDelay time.Duration
	nextSandbox  time.Time

	terminating bool
	deadline    time.Time
	lastStatus  *corev1.PodStatus
	timer       *time.Timer
}

// container is one container's runs.
type container struct {
	name       string
	program    string
	proc       *proc // the current run; nil when not running
	last       *proc // the previous run, for lastState / terminated
	restarts   int32
	run        int // counts starts; probe results carry it
	backoff    time.Duration
	next       time.Time    // earliest restart
	ready      *atomic.Bool // this run's readiness, set by its probe
	stopProbes context.CancelFunc
	startErr   string
}

func newWorker(a *Agent, pod *corev1.Pod) *worker {
	w := &worker{
		a: a, uid: pod.UID, pod: pod,
		kick:       make(chan struct{}, 1),
		containers: map[string]*container{},
		startTime:  metav1.Now(),
	}
	if pod.Status.StartTime != nil {
		w.startTime = *pod.Status.StartTime
	}
	return w
}

func (w *worker) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *worker) update(pod *corev1.Pod) {
	w.mu.Lock()
	w.pod = pod
	w.mu.Unlock()
	w.poke()
}

func (w *worker) markGone() {
	w.mu.Lock()
	w.gone = true
	w.mu.Unlock()
	w.poke()
}

// wakeAt kicks the worker at t (the earliest of the pending wake-ups).
func (w *worker) wakeAt(t time.Time) {
	if w.timer != nil {
		w.timer.Stop()
	}
	w.timer = time.AfterFunc(time.Until(t), w.poke)
}

func (w *worker) run(ctx context.Context) {
	w.poke()
	for {
		select {
		case <-ctx.Done():
			w.shutdown()
			return
		case <-w.kick:
		}
		if w.sync(ctx) {
			return
		}
	}
}

// sync moves the pod one step towards its spec; true when the worker is done.
func (w *worker) sync(ctx context.Context) bool {
	w.mu.Lock()
	pod, gone := w.pod, w.gone
	w.mu.Unlock()
	if gone || pod.DeletionTimestamp != nil {
		return w.syncTerminating(ctx, pod, gone)
	}
	if w.finished(pod) {
		// A pod that ran to completion keeps no network, as a runtime
		// removes its sandbox.
		w.removeSandbox()
		w.pushStatus(ctx, pod)
		return false
	}
	if !w.resolveImages(pod) {
		w.pushStatus(ctx, pod)
		return false
	}
	if w.sb == nil && !w.ensureSandbox(pod) {
		w.pushStatus(ctx, pod)
		return false
	}
	w.syncContainers(ctx, pod)
	w.pushStatus(ctx, pod)
	return false
}

// resolveImages maps every container's image to a program; an unknown one
// keeps the pod Pending with a Warning event, as a never-pull image would.
func (w *worker) resolveImages(pod *corev1.Pod) bool {
	w.unknown = ""
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		prog, ok := w.a.cfg.program(c.Image)
		if !ok {
			w.unknown = c.Image
			if w.warned != c.Image {
				w.warned = c.Image
				w.a.recorder.Eventf(pod, corev1.EventTypeWarning, "ErrImageNeverPull",
					"Container image %q is not present on this node: the local provider pulls no images and only runs known ones (%s)", c.Image, w.a.cfg.knownImages())
				klog.InfoS("Pod uses an unknown image; it stays Pending", "pod", klog.KObj(pod), "image", c.Image, "known", w.a.cfg.knownImages())
			}
			return false
		}
		if w.containers[c.Name] == nil {
			w.containers[c.Name] = &container{name: c.Name, program: prog, backoff: w.a.cfg.RestartBackoff}
		}
	}
	return true
}

// ensureSandbox allocates the pod's IP and wires its namespace, retrying
// with backoff on failure.
func (w *worker) ensureSandbox(pod *corev1.Pod) bool {
	if time.Now().Before(w.nextSandbox) {
		w.wakeAt(w.nextSandbox)
		return false
	}
	sb := sandbox{Pod: pod.Namespace + "/" + pod.Name, Netns: PodNetns(w.a.cfg.PodNetnsPrefix, pod.UID), HostVeth: hostVeth(pod.UID)}
	ip, err := w.a.ipam.allocate(pod.UID, sb)
	if err == nil {
		sb.IP = ip.String()
		err = w.a.setupSandbox(sb, ip)
	}
	if err != nil {
		w.sandboxErr = err.Error()
		if w.sandboxDelay == 0 {
			w.sandboxDelay = time.Second
		} else if w.sandboxDelay < 30*time.Second {
			w.sandboxDelay *= 2
		}
		w.nextSandbox = time.Now().Add(w.sandboxDelay)
		w.wakeAt(w.nextSandbox)
		w.a.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod network: %v", err)
		klog.ErrorS(err, "Pod network setup failed", "pod", klog.KObj(pod), "retryIn", w.sandboxDelay)
		return false
	}
	w.sb, w.ip, w.sandboxErr = &sb, ip, ""
	klog.InfoS("Pod network ready", "pod", klog.KObj(pod), "ip", ip, "netns", sb.Netns, "veth", sb.HostVeth)
	return true
}

// syncContainers starts what should run: first starts, and restarts after
// an exit when the restart policy wants one and the backoff has passed.
func (w *worker) syncContainers(ctx context.Context, pod *corev1.Pod) {
	for i := range pod.Spec.Containers {
		spec := &pod.Spec.Containers[i]
		c := w.containers[spec.Name]
		if c.proc != nil && !c.proc.exited() {
			continue
		}
		if c.proc != nil {
			w.reap(pod, c)
		}
		if c.run > 0 && !restarts(pod.Spec.RestartPolicy, c.last) {
			continue
		}
		if now := time.Now(); now.Before(c.next) {
			w.wakeAt(c.next)
			continue
		}
		w.startContainer(ctx, pod, spec, c)
	}
}

// reap records an exit and schedules the restart backoff.
func (w *worker) reap(pod *corev1.Pod, c *container) {
	p := c.proc
	c.proc, c.last, c.ready = nil, p, nil
	if c.stopProbes != nil {
		c.stopProbes()
	}
	// A run that lasted long resets the backoff, as the kubelet does.
	if p.finished.Sub(p.started) > 10*time.Minute {
		c.backoff = w.a.cfg.RestartBackoff
	}
	c.next = p.finished.Add(c.backoff)
	c.backoff = min(2*c.backoff, w.a.cfg.MaxRestartBackoff)
	klog.InfoS("Container exited", "pod", klog.KObj(pod), "container", c.name, "exitCode", p.exitCode, "signal", p.signal, "restartAt", c.next)
}

func restarts(policy corev1.RestartPolicy, last *proc) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return last == nil || last.exitCode != 0
	default:
		return true
	}
}

func (w *worker) startContainer(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, c *container) {
	env, envList := w.a.containerEnv(pod, spec, w.ip)
	log := filepath.Join(w.a.cfg.StateDir, "pods", pod.Namespace+"_"+pod.Name, "log")
	workdir := spec.WorkingDir
	if workdir == "" {
		workdir = "/"
	}
	args, err := argv(spec, c.program, env)
	var p *proc
	if err == nil {
		p, err = w.a.startProcess(w.sb.Netns, log, workdir, args, envList)
	}
	if c.run > 0 {
		c.restarts++
	}
	c.run++
	if err != nil {
		// A start failure counts as a failed run: same backoff.
		c.startErr = err.Error()
		now := time.Now()
		c.last = &proc{started: now, finished: now, exitCode: 128, done: closed()}
		c.next = now.Add(c.backoff)
		c.backoff = min(2*c.backoff, w.a.cfg.MaxRestartBackoff)
		w.wakeAt(c.next)
		w.a.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		klog.ErrorS(err, "Container start failed", "pod", klog.KObj(pod), "container", c.name)
		return
	}
	c.proc, c.startErr = p, ""
	go func() {
		<-p.done
		w.poke()
	}()
	w.a.recorder.Eventf(pod, corev1.EventTypeNormal, "Started", "Started container %s", c.name)
	klog.InfoS("Container started", "pod", klog.KObj(pod), "container", c.name, "pid", p.pid, "argv", args, "restarts", c.restarts)
	probeCtx, cancel := context.WithCancel(ctx)
	c.stopProbes = cancel
	c.ready = new(atomic.Bool)
	c.ready.Store(spec.ReadinessProbe == nil)
	w.startProbes(probeCtx, pod, spec, c, p, env)
}

func closed() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// finished reports a pod whose containers all ran and will not restart.
func (w *worker) finished(pod *corev1.Pod) bool {
	if len(w.containers) == 0 || len(w.containers) < len(pod.Spec.Containers) {
		return false
	}
	for _, c := range w.containers {
		if c.run == 0 || c.proc != nil && !c.proc.exited() {
			return false
		}
		if c.proc != nil {
			w.reap(pod, c)
		}
		if restarts(pod.Spec.RestartPolicy, c.last) {
			return false
		}
	}
	return true
}

func (w *worker) running() []*proc {
	var ps []*proc
	for _, c := range w.containers {
		if c.proc != nil && !c.proc.exited() {
			ps = append(ps, c.proc)
		}
	}
	return ps
}

func (w *worker) removeSandbox() {
	if w.sb == nil {
		return
	}
	if err := w.a.teardownSandbox(*w.sb); err != nil {
		klog.ErrorS(err, "Pod network teardown failed", "pod", w.sb.Pod)
	}
	if err := w.a.ipam.release(w.uid); err != nil {
		klog.ErrorS(err, "Releasing pod IP failed", "pod", w.sb.Pod)
	}
	klog.InfoS("Pod network removed", "pod", w.sb.Pod, "ip", w.ip, "netns", w.sb.Netns)
	w.sb = nil
}
