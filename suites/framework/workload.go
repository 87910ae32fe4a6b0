package framework

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/proxyproof/proxyproof/clusters"
)

// NetserverImage is the suite's test server: HTTP on 8080 (/hostname,
// /clientip, /readyz), UDP on 8081 answering "<hostname> <client
// ip:port>". BACKEND_IMAGE names a copy in another registry.
const NetserverImage = clusters.DefaultBackendImage

// Netserver ports.
const (
	NetserverHTTPPort = 8080
	NetserverUDPPort  = 8081
)

// CreateNamespace makes a namespace with a generated name for one spec;
// the caller deletes it (DeleteNamespace) so specs never see each other.
func (f *Framework) CreateNamespace(ctx context.Context, prefix string) (string, error) {
	// Labelled as the run's, so a provider can find and delete what an
	// interrupted run left (clusters/kubeconfig does).
	ns, err := f.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-", Labels: clusters.OwnedLabels(f.Cluster.Name())},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("namespace %s-*: %w", prefix, err)
	}
	return ns.Name, nil
}

// DeleteNamespace deletes ns without waiting for it to go.
func (f *Framework) DeleteNamespace(ctx context.Context, ns string) error {
	if err := f.Client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		return fmt.Errorf("namespace %s: %w", ns, err)
	}
	return nil
}

// Backends is a netserver Deployment.
type Backends struct {
	Namespace string
	Name      string
	Labels    map[string]string
	Replicas  int32
	// OnePerNode spreads the replicas one per node (hard anti-affinity).
	OnePerNode bool
	// NodeName pins every replica to one node.
	NodeName string
	// HTTPPort and UDPPort are the container ports named http and udp;
	// 0 means NetserverHTTPPort / NetserverUDPPort. Two Deployments with
	// different numbers under one name show a named targetPort resolved
	// per pod.
	HTTPPort, UDPPort int32
	// Tune, when set, edits the Deployment before it is created (probes,
	// shutdown delay, rollout strategy).
	Tune func(*appsv1.Deployment)
}

func (b Backends) ports() (http, udp int32) {
	http, udp = b.HTTPPort, b.UDPPort
	if http == 0 {
		http = NetserverHTTPPort
	}
	if udp == 0 {
		udp = NetserverUDPPort
	}
	return http, udp
}

// DeployNetserver creates the Deployment of b (it does not wait).
func (f *Framework) DeployNetserver(ctx context.Context, b Backends) error {
	httpPort, udpPort := b.ports()
	spec := corev1.PodSpec{
		NodeName:                      b.NodeName,
		TerminationGracePeriodSeconds: ptr.To[int64](2),
		Containers: []corev1.Container{{
			Name:  "netserver",
			Image: f.Backend(),
			// :latest would default to Always; on kind the image is loaded
			// into the nodes and there is no registry to pull from.
			ImagePullPolicy: corev1.PullIfNotPresent,
			Args:            []string{fmt.Sprintf("--http-port=%d", httpPort), fmt.Sprintf("--udp-port=%d", udpPort), "--shutdown-delay=1s"},
			Ports: []corev1.ContainerPort{
				{Name: "http", ContainerPort: httpPort, Protocol: corev1.ProtocolTCP},
				{Name: "udp", ContainerPort: udpPort, Protocol: corev1.ProtocolUDP},
			},
			ReadinessProbe: &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromInt32(httpPort)}},
				PeriodSeconds: 1,
			},
		}},
	}
	if b.OnePerNode {
		spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: b.Labels},
				TopologyKey:   corev1.LabelHostname,
			}},
		}}
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: b.Name, Labels: b.Labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(b.Replicas),
			Selector: &metav1.LabelSelector{MatchLabels: b.Labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: b.Labels}, Spec: spec},
		},
	}
	if b.Tune != nil {
		b.Tune(d)
	}
	_, err := f.Client.AppsV1().Deployments(b.Namespace).Create(ctx, d, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("deployment %s/%s: %w", b.Namespace, b.Name, err)
	}
	return nil
}

// ScaleNetserver sets the Deployment's replicas.
func (f *Framework) ScaleNetserver(ctx context.Context, ns, name string, replicas int32) error {
	s, err := f.Client.AppsV1().Deployments(ns).GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("deployment %s/%s scale: %w", ns, name, err)
	}
	s.Spec.Replicas = replicas
	if _, err := f.Client.AppsV1().Deployments(ns).UpdateScale(ctx, name, s, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("deployment %s/%s scale to %d: %w", ns, name, replicas, err)
	}
	return nil
}

// NetserverService is a Service in front of netservers selected by
// selector: port 80/TCP -> http and 81/UDP -> udp, of type typ.
func NetserverService(ns, name string, typ corev1.ServiceType, selector map[string]string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:     typ,
			Selector: selector,
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP},
				{Name: "udp", Port: 81, TargetPort: intstr.FromString("udp"), Protocol: corev1.ProtocolUDP},
			},
		},
	}
}

// CreateService creates svc and returns it as the API server filled it in
// (cluster IP, node ports).
func (f *Framework) CreateService(ctx context.Context, svc *corev1.Service) (*corev1.Service, error) {
	out, err := f.Client.CoreV1().Services(svc.Namespace).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	return out, nil
}

// ServicePort finds the port named name of svc.
func ServicePort(svc *corev1.Service, name string) (corev1.ServicePort, error) {
	for _, p := range svc.Spec.Ports {
		if p.Name == name {
			return p, nil
		}
	}
	return corev1.ServicePort{}, fmt.Errorf("service %s/%s has no port %q", svc.Namespace, svc.Name, name)
}
