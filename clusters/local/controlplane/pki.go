package controlplane

import (
	"fmt"
	"os"
	"path/filepath"
)

// Identities the components authenticate as. The names are the ones the
// bootstrap RBAC policy of kube-apiserver already binds, so no extra RBAC
// objects are needed.
const (
	adminUser             = "kubernetes-admin"
	adminGroup            = "system:masters"
	controllerManagerUser = "system:kube-controller-manager"
	schedulerUser         = "system:kube-scheduler"
	// proxierUser is bound to ClusterRole system:node-proxier, exactly what
	// upstream kube-proxy gets; ours and upstream run with the same rights.
	proxierUser = "system:kube-proxy"
	nodeGroup   = "system:nodes"
)

// pki is the set of files the components read.
type pki struct {
	dir                 string
	ca                  *authority
	caFile, caKeyFile   string
	apiserverCert       string
	apiserverKey        string
	saPrivate, saPublic string
	kcmCert, kcmKey     string
	schedCert, schedKey string
	// The front proxy CA vouches for the aggregation layer's requests
	// (X-Remote-User); kept apart from the cluster CA so that no ordinary
	// client certificate can claim to be the front proxy.
	frontProxyCA                    string
	frontProxyClient, frontProxyKey string
}

// writePKI creates the CA, serving certificates and the service account
// key pair under dir/pki. sans are the apiserver's extra names.
func writePKI(dir, name string, apiserverSANs []string) (*pki, error) {
	p := &pki{dir: filepath.Join(dir, "pki")}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki dir: %w", err)
	}
	ca, caKey, err := newAuthority(name)
	if err != nil {
		return nil, err
	}
	p.ca = ca
	if p.caFile, p.caKeyFile, err = writePair(p.dir, "ca", keyPair{certPEM: ca.certPEM, keyPEM: caKey}); err != nil {
		return nil, fmt.Errorf("write CA: %w", err)
	}
	serving := []struct {
		base, cn  string
		sans      []string
		cert, key *string
	}{
		{"apiserver", "kube-apiserver", apiserverSANs, &p.apiserverCert, &p.apiserverKey},
		{"kube-controller-manager", "kube-controller-manager", []string{"127.0.0.1", "localhost"}, &p.kcmCert, &p.kcmKey},
		{"kube-scheduler", "kube-scheduler", []string{"127.0.0.1", "localhost"}, &p.schedCert, &p.schedKey},
	}
	for _, s := range serving {
		kp, err := ca.issue(certRequest{commonName: s.cn, sans: s.sans, server: true})
		if err != nil {
			return nil, err
		}
		if *s.cert, *s.key, err = writePair(p.dir, s.base, kp); err != nil {
			return nil, fmt.Errorf("write %s certificate: %w", s.base, err)
		}
	}
	if err := p.writeFrontProxy(name); err != nil {
		return nil, err
	}
	private, public, err := newServiceAccountKeys()
	if err != nil {
		return nil, err
	}
	p.saPrivate = filepath.Join(p.dir, "sa.key")
	p.saPublic = filepath.Join(p.dir, "sa.pub")
	if err := os.WriteFile(p.saPrivate, private, 0o600); err != nil {
		return nil, fmt.Errorf("write service account key: %w", err)
	}
	if err := os.WriteFile(p.saPublic, public, 0o644); err != nil {
		return nil, fmt.Errorf("write service account key: %w", err)
	}
	return p, nil
}

// frontProxyUser is the name the apiserver accepts request headers from.
const frontProxyUser = "front-proxy-client"

func (p *pki) writeFrontProxy(name string) error {
	ca, caKey, err := newAuthority(name + "-front-proxy")
	if err != nil {
		return err
	}
	if p.frontProxyCA, _, err = writePair(p.dir, "front-proxy-ca", keyPair{certPEM: ca.certPEM, keyPEM: caKey}); err != nil {
		return fmt.Errorf("write front proxy CA: %w", err)
	}
	kp, err := ca.issue(certRequest{commonName: frontProxyUser})
	if err != nil {
		return err
	}
	if p.frontProxyClient, p.frontProxyKey, err = writePair(p.dir, "front-proxy-client", kp); err != nil {
		return fmt.Errorf("write front proxy client certificate: %w", err)
	}
	return nil
}

// apiserverSANs are the names clients use for the apiserver: loopback, the
// first service IP (in-cluster clients), the in-cluster DNS names, and the
// caller's extras (a forwarder).
func apiserverSANs(spec Spec) ([]string, error) {
	svcIP, err := firstServiceIP(spec.ServiceCIDR)
	if err != nil {
		return nil, err
	}
	sans := []string{
		"127.0.0.1", svcIP.String(), "localhost",
		"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
	}
	if spec.AdvertiseAddress != "" {
		sans = append(sans, spec.AdvertiseAddress)
	}
	return append(sans, spec.ExtraSANs...), nil
}
