package manifests

import (
	"bufio"
	"bytes"
	"io/fs"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/proxyproof/proxyproof/proxier/config"
)

// objects decodes every document of every shipped file with the API's own
// scheme, so a typo in a field name fails here and not on a user's cluster.
func objects(t *testing.T) []runtime.Object {
	t.Helper()
	var objs []runtime.Object
	err := fs.WalkDir(Proxier, "proxier", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := Proxier.ReadFile(path)
		if err != nil {
			return err
		}
		r := utilyaml.NewYAMLReader(bufioReader(data))
		for {
			doc, err := r.Read()
			if err != nil {
				break
			}
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
			if err != nil {
				t.Errorf("%s: %v", path, err)
				continue
			}
			objs = append(objs, obj)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestTheShippedConfigPassesTheProxiersOwnStrictLoader(t *testing.T) {
	var cm *v1.ConfigMap
	for _, o := range objects(t) {
		if c, ok := o.(*v1.ConfigMap); ok {
			cm = c
		}
	}
	if cm == nil {
		t.Fatal("no ConfigMap shipped")
	}
	obj, err := config.Decode([]byte(cm.Data["config.conf"]))
	if err != nil {
		t.Fatalf("shipped config.conf: %v", err)
	}
	if err := config.Validate(obj); err != nil {
		t.Fatalf("shipped config.conf is invalid: %v", err)
	}
}

func TestTheDaemonSetReadsTheShippedConfigAndProbesTheProxiersHealth(t *testing.T) {
	var ds *appsv1.DaemonSet
	var cm *v1.ConfigMap
	for _, o := range objects(t) {
		switch x := o.(type) {
		case *appsv1.DaemonSet:
			ds = x
		case *v1.ConfigMap:
			cm = x
		}
	}
	if ds == nil || cm == nil {
		t.Fatal("DaemonSet or ConfigMap missing")
	}
	spec := ds.Spec.Template.Spec
	if !spec.HostNetwork {
		t.Error("the proxier must run in the node's network namespace (hostNetwork)")
	}
	c := spec.Containers[0]
	var configArg string
	for _, a := range c.Command {
		if strings.HasPrefix(a, "--config=") {
			configArg = strings.TrimPrefix(a, "--config=")
		}
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		for _, vol := range spec.Volumes {
			if vol.Name == m.Name && vol.ConfigMap != nil && vol.ConfigMap.Name == cm.Name &&
				configArg == m.MountPath+"/config.conf" {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("--config=%s is not the shipped ConfigMap %s's config.conf", configArg, cm.Name)
	}
	for name, p := range map[string]*v1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.IntValue() != 10256 {
			t.Errorf("%s probe does not ask the proxier's health port 10256", name)
		}
	}
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
