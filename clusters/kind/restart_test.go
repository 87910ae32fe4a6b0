package kind

import (
	"reflect"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/proxyproof/proxyproof/clusters"
)

func TestARestartKeepsEarlierChangesAndNeedsANodeDaemonSetOnlyWhenItDiffers(t *testing.T) {
	p := nodeProxier{Mode: clusters.ModeIPTables}
	if p.applied(clusters.ProxierChange{}).variant(clusters.ModeIPTables) {
		t.Error("a plain restart asks for a DaemonSet of the node's own: it should go back to its mode's")
	}
	p = p.applied(clusters.ProxierChange{Mode: clusters.ModeNFTables})
	p = p.applied(clusters.ProxierChange{Flags: []string{"--v=4"}})
	if want := (nodeProxier{Mode: clusters.ModeNFTables, Flags: []string{"--v=4"}}); !reflect.DeepEqual(p, want) {
		t.Errorf("after a mode change and a flag change: %+v, want %+v (changes kept)", p, want)
	}
	if !p.variant(clusters.ModeIPTables) {
		t.Error("a node switched to nftables stays on the iptables DaemonSet")
	}
	back := nodeProxier{Mode: clusters.ModeIPTables}
	if back.variant(clusters.ModeIPTables) {
		t.Error("a node switched back to its mode, nothing else changed, is kept off its mode's DaemonSet")
	}
}

func TestANodesOwnDaemonSetRunsItsConfigurationOnItAlone(t *testing.T) {
	cm, ds, err := variantObjects(clusters.ProxierOurs, "c-worker", "172.18.0.2", nodeProxier{Mode: clusters.ModeIPVS, Scheduler: "mh", Flags: []string{"--v=2"}})
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Mode string `json:"mode"`
		IPVS struct {
			Scheduler string `json:"scheduler"`
		} `json:"ipvs"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data[proxierConfigKey]), &conf); err != nil {
		t.Fatal(err)
	}
	if conf.Mode != clusters.ModeIPVS || conf.IPVS.Scheduler != "mh" {
		t.Errorf("configuration mode %q scheduler %q, want ipvs mh", conf.Mode, conf.IPVS.Scheduler)
	}
	pod := ds.Spec.Template.Spec
	if !reflect.DeepEqual(pod.NodeSelector, map[string]string{LabelProxier: ds.Name}) || pod.Affinity != nil {
		t.Errorf("node selector %v affinity %v: want the node labelled %s=%s alone", pod.NodeSelector, pod.Affinity, LabelProxier, ds.Name)
	}
	if !slices.Contains(pod.Containers[0].Command, "--v=2") {
		t.Errorf("command %q lacks the extra flag", pod.Containers[0].Command)
	}
	mounted := slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool { return v.ConfigMap != nil && v.ConfigMap.Name == cm.Name })
	if !mounted {
		t.Errorf("volumes %v do not mount configmap %s", pod.Volumes, cm.Name)
	}
}

func TestModeDaemonSetsLeaveARestartedNode(t *testing.T) {
	objs, err := proxierFor(clusters.ProxierOurs, []string{clusters.ModeIPTables, clusters.ModeNFTables}, "172.18.0.2")
	if err != nil {
		t.Fatal(err)
	}
	for _, ds := range objs.DaemonSets {
		terms := ds.Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		ok := len(terms) > 0
		for _, term := range terms {
			ok = ok && slices.ContainsFunc(term.MatchExpressions, func(r corev1.NodeSelectorRequirement) bool {
				return r.Key == LabelProxier && r.Operator == corev1.NodeSelectorOpDoesNotExist
			})
		}
		if !ok {
			t.Errorf("daemonset %s runs on a node labelled %s too: a restarted node would run two proxiers", ds.Name, LabelProxier)
		}
	}
}
