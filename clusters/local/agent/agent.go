package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// Agent is one running node agent.
type Agent struct {
	cfg      Config
	client   kubernetes.Interface
	recorder record.EventRecorder
	ipam     *ipam
	spawn    *spawner

	statusKick chan struct{}
	mu         sync.Mutex
	netErr     string // why the node is not ready yet ("" = ready)
}

// Run registers the node, keeps it Ready and runs its pods until ctx ends;
// then it stops the pods' processes and removes their namespaces. The Node
// and the pods stay in the API, as with a kubelet that stops.
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	client, err := newClient(cfg.Kubeconfig, cfg.NodeName)
	if err != nil {
		return err
	}
	routesClient := client
	if cfg.RoutesKubeconfig != "" {
		if routesClient, err = newClient(cfg.RoutesKubeconfig, cfg.NodeName); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(cfg.StateDir, "pods"), 0o755); err != nil {
		return fmt.Errorf("node %s: state dir: %w", cfg.NodeName, err)
	}
	a := &Agent{cfg: cfg, client: client, statusKick: make(chan struct{}, 1), netErr: "waiting for the node's podCIDR"}
	if a.ipam, err = loadIPAM(filepath.Join(cfg.StateDir, "ipam.json")); err != nil {
		return fmt.Errorf("node %s: %w", cfg.NodeName, err)
	}
	a.removeLeftovers()
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	a.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: cfg.NodeName})
	a.spawn = newSpawner()
	defer a.spawn.close()

	if err := a.registerNode(ctx); err != nil {
		return fmt.Errorf("node %s: register: %w", cfg.NodeName, err)
	}
	var bg sync.WaitGroup
	defer bg.Wait()
	bg.Add(1)
	go func() { defer bg.Done(); a.heartbeat(ctx) }()

	// The node's own Node (all a node identity may watch) and, with the
	// routes identity, every Node.
	self := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", cfg.NodeName).String()
		}))
	selfChanged, err := watchNodes(self, cfg.NodeName)
	if err != nil {
		return err
	}
	self.Start(ctx.Done())
	defer self.Shutdown()
	if err := a.waitNetwork(ctx, self.Core().V1().Nodes().Lister().Get, selfChanged); err != nil {
		return err
	}
	all := informers.NewSharedInformerFactory(routesClient, 0)
	allChanged, err := watchNodes(all, cfg.NodeName)
	if err != nil {
		return err
	}
	all.Start(ctx.Done())
	defer all.Shutdown()
	bg.Add(1)
	go func() { defer bg.Done(); a.keepRoutes(ctx, all.Core().V1().Nodes().Lister().List, allChanged) }()

	pods := newPodManager(a)
	defer pods.wait()
	podInformers := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", cfg.NodeName).String()
		}))
	if _, err := podInformers.Core().V1().Pods().Informer().AddEventHandler(pods.handler(ctx)); err != nil {
		return fmt.Errorf("node %s: pod informer: %w", cfg.NodeName, err)
	}
	podInformers.Start(ctx.Done())
	defer podInformers.Shutdown()
	klog.InfoS("Node agent running", "node", cfg.NodeName, "ip", cfg.NodeIP, "netns", cfg.Netns, "images", cfg.knownImages())
	<-ctx.Done()
	klog.InfoS("Node agent stopping: stopping pods", "node", cfg.NodeName)
	return nil
}

func newClient(kubeconfig, node string) (kubernetes.Interface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("node %s: kubeconfig %s: %w", node, kubeconfig, err)
	}
	rc.QPS, rc.Burst = 50, 100
	rc.UserAgent = "proxyproof-local-node/" + node
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("node %s: client: %w", node, err)
	}
	return c, nil
}

// watchNodes returns a channel that receives a token on any Node change.
func watchNodes(f informers.SharedInformerFactory, node string) (<-chan struct{}, error) {
	changed := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := f.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: poke, UpdateFunc: func(_, n any) { poke(n) }, DeleteFunc: poke,
	}); err != nil {
		return nil, fmt.Errorf("node %s: node informer: %w", node, err)
	}
	return changed, nil
}

// notReady says why the node is not Ready, or "".
func (a *Agent) notReady() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.netErr
}

func (a *Agent) setNotReady(msg string) {
	a.mu.Lock()
	changed := a.netErr != msg
	a.netErr = msg
	a.mu.Unlock()
	if changed {
		select {
		case a.statusKick <- struct{}{}:
		default:
		}
	}
}

// waitNetwork waits for the controller-manager to give the node a podCIDR,
// then wires the node for pods and reports it Ready.
func (a *Agent) waitNetwork(ctx context.Context, get func(string) (*corev1.Node, error), changed <-chan struct{}) error {
	for {
		if n, err := get(a.cfg.NodeName); err == nil && n.Spec.PodCIDR != "" {
			if err := a.ipam.setCIDR(n.Spec.PodCIDR); err != nil {
				return fmt.Errorf("node %s: %w", a.cfg.NodeName, err)
			}
			if err := a.setupNode(); err != nil {
				a.setNotReady(err.Error())
				return err
			}
			klog.InfoS("Node network ready", "node", a.cfg.NodeName, "podCIDR", n.Spec.PodCIDR)
			a.setNotReady("")
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s: no podCIDR before shutdown: %w", a.cfg.NodeName, ctx.Err())
		case <-changed:
		case <-time.After(5 * time.Second):
		}
	}
}

// keepRoutes syncs the host-gw routes on every Node change, and every
// 30 s to repair what someone removed.
func (a *Agent) keepRoutes(ctx context.Context, list func(labels.Selector) ([]*corev1.Node, error), changed <-chan struct{}) {
	for {
		nodes, err := list(labels.Everything())
		if err == nil {
			err = a.syncNodeRoutes(nodes)
		}
		if err != nil {
			klog.ErrorS(err, "Syncing routes to other nodes failed", "node", a.cfg.NodeName)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-time.After(30 * time.Second):
		}
	}
}

// removeLeftovers tears down the pod networks a previous run recorded: its
// processes died with it (parent-death signal), their pods start afresh.
func (a *Agent) removeLeftovers() {
	for uid, sb := range a.ipam.all() {
		klog.InfoS("Removing a pod network a previous run left", "node", a.cfg.NodeName, "pod", sb.Pod, "netns", sb.Netns)
		if err := a.teardownSandbox(sb); err != nil {
			klog.ErrorS(err, "Removing leftover pod network failed", "pod", sb.Pod)
		}
		if err := a.ipam.release(uid); err != nil {
			klog.ErrorS(err, "Releasing leftover pod IP failed", "pod", sb.Pod)
		}
	}
}
