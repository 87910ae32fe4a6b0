package kind

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// As Docker 20.10 writes it for an internal network (iptables -S).
const isolationDump = `-N DOCKER-ISOLATION-STAGE-1
-A DOCKER-ISOLATION-STAGE-1 ! -s 172.18.0.0/16 -o br-c3043d28f22f -j DROP
-A DOCKER-ISOLATION-STAGE-1 ! -d 172.18.0.0/16 -i br-c3043d28f22f -j DROP
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
`

func TestAnInternalNetworksDropsAreFoundAndTheirAbsenceIsNamed(t *testing.T) {
	if err := sealed([]byte(isolationDump), "br-c3043d28f22f", "172.18.0.0/16"); err != nil {
		t.Errorf("Docker's internal-network drops not recognised: %v", err)
	}
	// A network that is not internal has neither drop.
	err := sealed([]byte(isolationDump), "br-000000000000", "172.19.0.0/16")
	if err == nil || !strings.Contains(err.Error(), "! -d 172.19.0.0/16 -i br-000000000000 -j DROP") {
		t.Errorf("error %v, want one naming the missing drop", err)
	}
	// Only one of the two is not enough.
	one := strings.Replace(isolationDump, "! -s 172.18.0.0/16", "-s 172.18.0.0/16", 1)
	if err := sealed([]byte(one), "br-c3043d28f22f", "172.18.0.0/16"); err == nil {
		t.Error("a network dropping only what leaves it was taken as sealed")
	}
}

func TestOnlyTheRulesTaggedForTheClusterAreDeleted(t *testing.T) {
	dump := `-N DOCKER-USER
-A DOCKER-USER -i br-aaa -o br-aaa -m comment --comment proxyproof-kind:c1 -j ACCEPT
-A DOCKER-USER -i br-bbb -o br-bbb -m comment --comment "proxyproof-kind:c10" -j ACCEPT
-A DOCKER-USER -i br-ccc -o br-ccc -m comment --comment "proxyproof-kind:c1" -j ACCEPT
-A DOCKER-USER -j RETURN
`
	got := rulesTagged([]byte(dump), ruleComment("c1"))
	want := [][]string{
		strings.Fields("-D DOCKER-USER -i br-aaa -o br-aaa -m comment --comment proxyproof-kind:c1 -j ACCEPT"),
		strings.Fields("-D DOCKER-USER -i br-ccc -o br-ccc -m comment --comment proxyproof-kind:c1 -j ACCEPT"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deletions (-want +got):\n%s", diff)
	}
}
