package controlplane

import (
	"path/filepath"
	"strconv"
)

// ports are the loopback ports one control plane listens on.
type ports struct {
	etcdClient, etcdPeer int
	apiserver            int
	controllerManager    int
	scheduler            int
}

func url(scheme string, port int) string {
	return scheme + "://127.0.0.1:" + strconv.Itoa(port)
}

// etcdArgs: a single member; the peer port is set too because etcd would
// otherwise take localhost:2380 and a second cluster could not start.
func etcdArgs(dir string, p ports) []string {
	peer := url("http", p.etcdPeer)
	return []string{
		"--name=default",
		"--data-dir=" + filepath.Join(dir, "etcd"),
		"--listen-client-urls=" + url("http", p.etcdClient),
		"--advertise-client-urls=" + url("http", p.etcdClient),
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=default=" + peer,
		"--initial-cluster-state=new",
		"--logger=zap",
		"--log-level=warn",
	}
}

func apiserverArgs(spec Spec, k *pki, p ports) []string {
	args := []string{
		"--etcd-servers=" + url("http", p.etcdClient),
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(p.apiserver),
		"--tls-cert-file=" + k.apiserverCert,
		"--tls-private-key-file=" + k.apiserverKey,
		"--client-ca-file=" + k.caFile,
		"--service-cluster-ip-range=" + spec.ServiceCIDR,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + k.saPublic,
		"--service-account-signing-key-file=" + k.saPrivate,
		// Node lets each node agent touch only its own Node and pods;
		// RBAC covers everyone else with the bootstrap policy.
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		// The aggregation layer, as kubeadm sets it up; without it every
		// delegating component logs a missing requestheader CA forever.
		"--requestheader-client-ca-file=" + k.frontProxyCA,
		"--requestheader-allowed-names=" + frontProxyUser,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + k.frontProxyClient,
		"--proxy-client-key-file=" + k.frontProxyKey,
		"--v=" + strconv.Itoa(spec.Verbosity),
	}
	if spec.AdvertiseAddress != "" {
		args = append(args, "--advertise-address="+spec.AdvertiseAddress)
	}
	return args
}

func controllerManagerArgs(spec Spec, dir string, k *pki, p ports) []string {
	kubeconfig := filepath.Join(dir, "kube-controller-manager.kubeconfig")
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(p.controllerManager),
		"--tls-cert-file=" + k.kcmCert,
		"--tls-private-key-file=" + k.kcmKey,
		"--client-ca-file=" + k.caFile,
		"--controllers=*",
		"--allocate-node-cidrs=true",
		"--cluster-cidr=" + spec.ClusterCIDR,
		"--node-cidr-mask-size=" + strconv.Itoa(spec.NodeCIDRMaskSize),
		"--service-cluster-ip-range=" + spec.ServiceCIDR,
		"--service-account-private-key-file=" + k.saPrivate,
		"--use-service-account-credentials=true",
		"--root-ca-file=" + k.caFile,
		// The CA signs CSRs, so a node agent can join the kubelet way.
		"--cluster-signing-cert-file=" + k.caFile,
		"--cluster-signing-key-file=" + k.caKeyFile,
		// One instance per cluster: a lease would only delay the start.
		"--leader-elect=false",
		"--v=" + strconv.Itoa(spec.Verbosity),
	}
}

func schedulerArgs(spec Spec, dir string, k *pki, p ports) []string {
	kubeconfig := filepath.Join(dir, "kube-scheduler.kubeconfig")
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(p.scheduler),
		"--tls-cert-file=" + k.schedCert,
		"--tls-private-key-file=" + k.schedKey,
		"--client-ca-file=" + k.caFile,
		"--leader-elect=false",
		"--v=" + strconv.Itoa(spec.Verbosity),
	}
}

// component is one process to start and how to know it is healthy.
type component struct {
	name   string
	bin    string
	args   []string
	health string // URL answering 200 "ok" once ready
}

func components(spec Spec, bins Paths, dir string, k *pki, p ports) (etcd component, rest []component) {
	etcd = component{"etcd", bins.Etcd, etcdArgs(dir, p), url("http", p.etcdClient) + "/health"}
	rest = []component{
		{"kube-apiserver", bins.APIServer, apiserverArgs(spec, k, p), url("https", p.apiserver) + "/readyz"},
		{"kube-controller-manager", bins.ControllerManager, controllerManagerArgs(spec, dir, k, p), url("https", p.controllerManager) + "/healthz"},
		{"kube-scheduler", bins.Scheduler, schedulerArgs(spec, dir, k, p), url("https", p.scheduler) + "/healthz"},
	}
	return etcd, rest
}
