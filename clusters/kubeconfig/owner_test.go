package kubeconfig

import (
	"context"
	"os"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/proxyproof/proxyproof/clusters"
)

func ns(name, run, holder string) *corev1.Namespace {
	n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: clusters.OwnedLabels(run)}}
	if holder != "" {
		n.Annotations = map[string]string{AnnotationHolder: holder}
	}
	return n
}

// TestTheNextRunRemovesOnlyWhatDeadRunsLeft: an interrupted run's
// namespaces (its holder process gone) are deleted; a live run's, one
// held on another machine, and the cluster's own namespaces are not.
func TestTheNextRunRemovesOnlyWhatDeadRunsLeft(t *testing.T) {
	host, _ := os.Hostname()
	client := fake.NewSimpleClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{clusters.LabelRun: "dead"}}}, // not ours: no owner label
		ns(suiteNamespace("dead"), "dead", host+"/999999999/1"),
		ns("svc-abcde", "dead", ""),
		ns(suiteNamespace("live"), "live", holder()),
		ns("svc-fghij", "live", ""),
		ns(suiteNamespace("elsewhere"), "elsewhere", "another-host/1/1"),
	)
	ctx := context.Background()
	runs, err := cleanLeftovers(ctx, client, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(runs, []string{"dead"}) {
		t.Errorf("removed runs %v, want [dead]", runs)
	}
	list, _ := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	var left []string
	for _, n := range list.Items {
		left = append(left, n.Name)
	}
	slices.Sort(left)
	want := []string{"kube-system", suiteNamespace("elsewhere"), suiteNamespace("live"), "svc-fghij", "web"}
	if !slices.Equal(left, want) {
		t.Errorf("namespaces left %v, want %v", left, want)
	}
	if runs, _ := cleanLeftovers(ctx, client, true); !slices.Equal(runs, []string{"elsewhere", "live"}) && !slices.Equal(runs, []string{"live", "elsewhere"}) {
		t.Errorf("all: removed %v, want every run's", runs)
	}
}
