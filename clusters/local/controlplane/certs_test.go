package controlplane

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"slices"
	"testing"
)

func parseCert(t *testing.T, pemBytes []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestApiserverCertificateNamesLoopbackAndTheFirstServiceIP(t *testing.T) {
	for _, tc := range []struct {
		name      string
		spec      Spec
		wantIPs   []string
		wantNames []string
	}{
		{
			name:      "default service range gives 10.96.0.1",
			spec:      Spec{},
			wantIPs:   []string{"127.0.0.1", "10.96.0.1"},
			wantNames: []string{"kubernetes.default.svc.cluster.local", "localhost"},
		},
		{
			name:    "a custom service range gives its first address",
			spec:    Spec{ServiceCIDR: "172.20.8.0/22"},
			wantIPs: []string{"127.0.0.1", "172.20.8.1"},
		},
		{
			name:      "advertise address and extra names are added",
			spec:      Spec{AdvertiseAddress: "192.0.2.10", ExtraSANs: []string{"198.51.100.7", "api.example"}},
			wantIPs:   []string{"192.0.2.10", "198.51.100.7"},
			wantNames: []string{"api.example"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			spec.Dir = t.TempDir()
			spec = spec.withDefaults()
			sans, err := apiserverSANs(spec)
			if err != nil {
				t.Fatal(err)
			}
			k, err := writePKI(spec.Dir, spec.Name, sans)
			if err != nil {
				t.Fatal(err)
			}
			certPEM, err := os.ReadFile(k.apiserverCert)
			if err != nil {
				t.Fatal(err)
			}
			cert := parseCert(t, certPEM)
			for _, ip := range tc.wantIPs {
				if !slices.ContainsFunc(cert.IPAddresses, func(got net.IP) bool { return got.Equal(net.ParseIP(ip)) }) {
					t.Errorf("IP SANs %v lack %s", cert.IPAddresses, ip)
				}
			}
			for _, n := range tc.wantNames {
				if !slices.Contains(cert.DNSNames, n) {
					t.Errorf("DNS SANs %v lack %s", cert.DNSNames, n)
				}
			}
			pool := x509.NewCertPool()
			pool.AddCert(k.ca.cert)
			if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				t.Errorf("serving certificate does not verify against the CA for 127.0.0.1: %v", err)
			}
		})
	}
}

func TestClientCertificateCarriesUserAndGroupsAndVerifiesForClientAuth(t *testing.T) {
	ca, _, err := newAuthority("test")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.issue(certRequest{commonName: "system:node:n1", groups: []string{"system:nodes"}})
	if err != nil {
		t.Fatal(err)
	}
	cert := parseCert(t, kp.certPEM)
	if cert.Subject.CommonName != "system:node:n1" || !slices.Equal(cert.Subject.Organization, []string{"system:nodes"}) {
		t.Errorf("subject = %v, want CN system:node:n1 O system:nodes", cert.Subject)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate does not verify for client auth: %v", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("client certificate verifies for server auth; it must not")
	}
}

func TestPrivateKeysAreReadableByTheOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	spec := Spec{Dir: dir}.withDefaults()
	sans, err := apiserverSANs(spec)
	if err != nil {
		t.Fatal(err)
	}
	k, err := writePKI(dir, spec.Name, sans)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{k.caKeyFile, k.apiserverKey, k.saPrivate, k.kcmKey, k.schedKey, k.frontProxyKey} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want 0600", f, fi.Mode().Perm())
		}
	}
}
