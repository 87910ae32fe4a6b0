package image

import (
	"fmt"
	"strings"
)

// Registry is where kubeadm looks for the control-plane images when its
// configuration names no other imageRepository (kind names none).
const Registry = "registry.k8s.io"

// addonVersions are the etcd, pause and CoreDNS tags one Kubernetes minor's
// kubeadm asks for (cmd/kubeadm/app/constants: DefaultEtcdVersion,
// PauseVersion, CoreDNSVersion). A new minor needs a new row, checked by
// TestNamesMatchKubeadm against the built kubeadm.
var addonVersions = map[string]struct{ etcd, pause, coreDNS string }{
	"v1.34": {etcd: "3.6.5-0", pause: "3.10.1", coreDNS: "v1.12.1"},
}

// Names are the image references kubeadm of one Kubernetes version uses.
type Names struct {
	APIServer, ControllerManager, Scheduler, KubeProxy string
	Pause, Etcd, CoreDNS                               string
}

// KubeadmNames returns the references `kubeadm config images list
// --kubernetes-version version` prints, or an error naming the version
// when its minor is not known here.
func KubeadmNames(version string) (Names, error) {
	minor, err := minorOf(version)
	if err != nil {
		return Names{}, err
	}
	v, ok := addonVersions[minor]
	if !ok {
		return Names{}, fmt.Errorf("kubernetes version %s: the etcd, pause and CoreDNS tags kubeadm %s asks for are not known; add them to addonVersions in clusters/kind/image/kubeadm.go", version, minor)
	}
	return Names{
		APIServer:         Registry + "/kube-apiserver:" + version,
		ControllerManager: Registry + "/kube-controller-manager:" + version,
		Scheduler:         Registry + "/kube-scheduler:" + version,
		KubeProxy:         Registry + "/kube-proxy:" + version,
		Pause:             Registry + "/pause:" + v.pause,
		Etcd:              Registry + "/etcd:" + v.etcd,
		CoreDNS:           Registry + "/coredns/coredns:" + v.coreDNS,
	}, nil
}

// List is the names in kubeadm's order.
func (n Names) List() []string {
	return []string{n.APIServer, n.ControllerManager, n.Scheduler, n.KubeProxy, n.CoreDNS, n.Pause, n.Etcd}
}

// minorOf turns "v1.34.4" into "v1.34".
func minorOf(version string) (string, error) {
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	if !strings.HasPrefix(version, "v") || len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return "", fmt.Errorf("kubernetes version %q: want vMAJOR.MINOR.PATCH, e.g. v1.34.4", version)
	}
	return "v" + parts[0] + "." + parts[1], nil
}
