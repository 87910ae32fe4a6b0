package controlplane

import (
	"fmt"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// writeKubeconfig writes a self-contained kubeconfig (certificates
// embedded) for one client identity, so the file can be copied anywhere.
func writeKubeconfig(path, cluster, server string, caPEM []byte, user string, kp keyPair) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[cluster] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.certPEM, ClientKeyData: kp.keyPEM}
	ctx := user + "@" + cluster
	cfg.Contexts[ctx] = &clientcmdapi.Context{Cluster: cluster, AuthInfo: user}
	cfg.CurrentContext = ctx
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("kubeconfig %s for %s: %w", path, user, err)
	}
	return nil
}

// issueKubeconfig signs a client certificate for user in groups and writes
// its kubeconfig.
func issueKubeconfig(ca *authority, path, cluster, server, user string, groups ...string) error {
	kp, err := ca.issue(certRequest{commonName: user, groups: groups})
	if err != nil {
		return err
	}
	return writeKubeconfig(path, cluster, server, ca.certPEM, user, kp)
}
