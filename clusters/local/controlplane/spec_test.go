package controlplane

import (
	"strings"
	"testing"
)

func TestSpecValidation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		spec    Spec
		wantErr string
	}{
		{name: "defaults with a dir are valid", spec: Spec{Dir: "/x"}},
		{name: "a missing dir is refused", spec: Spec{}, wantErr: "Spec.Dir is required"},
		{name: "a service range inside the pod range is refused", spec: Spec{Dir: "/x", ServiceCIDR: "10.244.1.0/24"}, wantErr: "overlaps"},
		{name: "a node mask wider than the pod range is refused", spec: Spec{Dir: "/x", NodeCIDRMaskSize: 8}, wantErr: "node CIDR mask size 8"},
		{name: "a malformed service range is refused", spec: Spec{Dir: "/x", ServiceCIDR: "10.96.0.0"}, wantErr: "service CIDR"},
		{name: "an advertise address that is no IP is refused", spec: Spec{Dir: "/x", AdvertiseAddress: "api"}, wantErr: "not an IP"},
		{name: "a loopback advertise address is refused", spec: Spec{Dir: "/x", AdvertiseAddress: "127.0.0.1"}, wantErr: "not loopback"},
		{name: "a node-reachable advertise address is valid", spec: Spec{Dir: "/x", AdvertiseAddress: "169.254.60.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.withDefaults().validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestFirstServiceIP(t *testing.T) {
	for _, tc := range []struct{ cidr, want string }{
		{"10.96.0.0/16", "10.96.0.1"},
		{"10.96.5.7/16", "10.96.0.1"}, // host bits are ignored, as the apiserver does
		{"fd00:10:96::/112", "fd00:10:96::1"},
	} {
		got, err := firstServiceIP(tc.cidr)
		if err != nil || got.String() != tc.want {
			t.Errorf("firstServiceIP(%s) = %v, %v; want %s", tc.cidr, got, err, tc.want)
		}
	}
	if _, err := firstServiceIP("10.0.0.0/32"); err == nil {
		t.Error("a /32 service range has no service IP, want an error")
	}
}
