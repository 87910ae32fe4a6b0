package kind

import (
	"fmt"
	"net"
	"strconv"

	"k8s.io/client-go/tools/clientcmd"
)

// apiServerURL is the API server at the control-plane container's
// address on the cluster network: on an internal Docker network the port
// kind publishes to 127.0.0.1 does not answer, the container's address
// does, and kubeadm puts that address (the advertise address) in the
// serving certificate.
func apiServerURL(controlPlaneIP string) string {
	return "https://" + net.JoinHostPort(controlPlaneIP, strconv.Itoa(apiServerPort))
}

// rewriteServer points every cluster of a kubeconfig at server.
func rewriteServer(kubeconfig []byte, server string) ([]byte, error) {
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	if len(cfg.Clusters) == 0 {
		return nil, fmt.Errorf("kubeconfig has no cluster to point at %s", server)
	}
	for _, c := range cfg.Clusters {
		c.Server = server
	}
	return clientcmd.Write(*cfg)
}
