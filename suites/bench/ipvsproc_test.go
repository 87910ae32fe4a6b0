package bench

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

const procIPVSHeader = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
`

const procIPVS = procIPVSHeader + `TCP  0A600001:01BB rr
  -> C0A84D01:192B      Masq    1      0          0
TCP  0A60000A:0050 rr
  -> AC100001:1F90      Masq    1      0          0
  -> AC100002:1F90      Masq    0      0          3
UDP  0A60000A:0035 rr
  -> AC100003:0035      Masq    1      0          0
FWM  00000001 rr
  -> AC100004:1F90      Masq    1      0          0
TCP  [fd00:0000:0000:0000:0000:0000:0000:0001]:0050 rr
  -> [fd00:0000:0000:0000:0000:0000:0000:0002]:1F90      Masq    1      0          0
TCP  0A60000B:0050 rr
`

func TestParseIPVSProc(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    ipvsTable
		wantErr bool
	}{
		{
			name: "TCP virtual servers keep their real servers and weights; UDP, FWM and IPv6 are skipped",
			in:   procIPVS,
			want: ipvsTable{
				"10.96.0.1:443": {"192.168.77.1:6443": 1},
				"10.96.0.10:80": {"172.16.0.1:8080": 1, "172.16.0.2:8080": 0},
				"10.96.0.11:80": {},
			},
		},
		{name: "an empty table (headers only) has no virtual server", in: procIPVSHeader, want: ipvsTable{}},
		{name: "an address that is not hex is an error", in: procIPVSHeader + "TCP  0A6000ZZ:0050 rr\n", wantErr: true},
		{name: "a real server without its weight is an error", in: procIPVSHeader + "TCP  0A600001:0050 rr\n  -> AC100001:1F90 Masq\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseIPVSProc(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseIPVSProc error = %v, want error %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); !tc.wantErr && diff != "" {
				t.Errorf("parseIPVSProc (-want +got):\n%s", diff)
			}
		})
	}
}

func TestActiveCountsOnlyRealServersWithWeight(t *testing.T) {
	tab, err := parseIPVSProc(procIPVS)
	if err != nil {
		t.Fatal(err)
	}
	if got := tab.active("10.96.0.10:80"); got != 1 {
		t.Errorf("active(10.96.0.10:80) = %d, want 1: the weight-0 server is draining, not live", got)
	}
	if got := tab.active("10.96.0.99:80"); got != 0 {
		t.Errorf("active of an absent virtual server = %d, want 0", got)
	}
}
