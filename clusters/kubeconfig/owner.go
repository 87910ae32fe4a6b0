package kubeconfig

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/clusters"
)

// AnnotationHolder, on the suite's own namespace, names the process that
// runs it (host/pid/start time): the next run, or make cluster-down,
// removes what a run left only when that process is gone.
const AnnotationHolder = "proxyproof.dev/holder"

// holder is this process as AnnotationHolder records it. The start time
// (clock ticks since boot, /proc/self/stat field 22) tells a reused pid
// from the run that held it.
func holder() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), startTime(os.Getpid()))
}

func startTime(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// The command name (field 2) may hold spaces: count after its ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// holderAlive reports whether the process h names still runs. A holder
// on another host cannot be checked from here: counted alive, so a run
// elsewhere is never cut off (make cluster-down ALL=1 removes it anyway).
func holderAlive(h string) bool {
	parts := strings.Split(h, "/")
	host, _ := os.Hostname()
	if len(parts) != 3 || parts[0] != host {
		return len(parts) == 3
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil {
		return false
	}
	return startTime(pid) != "" && startTime(pid) == parts[2]
}

// suiteNamespace is the name of run's own namespace (helper DaemonSet).
func suiteNamespace(run string) string { return "proxyproof-" + run }

// ownedSelector finds every namespace a run of the suite made.
var ownedSelector = clusters.LabelOwner + "=" + clusters.OwnerSuite

// createSuiteNamespace makes run's own namespace, labelled and held by
// this process.
func createSuiteNamespace(ctx context.Context, client kubernetes.Interface, run string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:        suiteNamespace(run),
		Labels:      clusters.OwnedLabels(run),
		Annotations: map[string]string{AnnotationHolder: holder()},
	}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("namespace %s: %w", ns.Name, err)
	}
	return nil
}

// deleteRun deletes every namespace labelled as run's, its own last so a
// crash half way still leaves the holder record.
func deleteRun(ctx context.Context, client kubernetes.Interface, run string) error {
	list, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: clusters.LabelRun + "=" + run + "," + ownedSelector})
	if err != nil {
		return fmt.Errorf("namespaces of run %s: %w", run, err)
	}
	own := suiteNamespace(run)
	for _, ns := range list.Items {
		if ns.Name != own {
			if err := deleteNamespace(ctx, client, ns.Name); err != nil {
				return err
			}
		}
	}
	return deleteNamespace(ctx, client, own)
}

func deleteNamespace(ctx context.Context, client kubernetes.Interface, name string) error {
	err := client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	return nil
}

// leftovers are the runs whose namespaces are still there with no live
// holder: a run that was interrupted (killed, machine restarted). all
// counts runs held elsewhere as left over too (an explicit clean-up).
func leftovers(ctx context.Context, client kubernetes.Interface, all bool) ([]string, error) {
	list, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: ownedSelector})
	if err != nil {
		return nil, fmt.Errorf("namespaces labelled %s: %w", ownedSelector, err)
	}
	holders := map[string]string{}
	var runs []string
	for _, ns := range list.Items {
		run := ns.Labels[clusters.LabelRun]
		if _, seen := holders[run]; !seen {
			holders[run] = ""
			runs = append(runs, run)
		}
		if h := ns.Annotations[AnnotationHolder]; h != "" {
			holders[run] = h
		}
	}
	var dead []string
	for _, run := range runs {
		if h := holders[run]; all || h == "" || !holderAlive(h) {
			dead = append(dead, run)
		} else {
			klog.InfoS("Leaving the namespaces of a run that is still going", "run", run, "holder", h)
		}
	}
	return dead, nil
}

// cleanLeftovers deletes what interrupted runs left.
func cleanLeftovers(ctx context.Context, client kubernetes.Interface, all bool) ([]string, error) {
	runs, err := leftovers(ctx, client, all)
	if err != nil {
		return nil, err
	}
	// A take-over may outlive its namespaces (a run killed while
	// deleting them): its record on kube-proxy's DaemonSet names it.
	taken, err := takeOverLeftovers(ctx, client, all)
	if err != nil {
		return nil, err
	}
	for _, run := range taken {
		if !slices.Contains(runs, run) {
			runs = append(runs, run)
		}
	}
	for _, run := range runs {
		klog.InfoS("Removing what an earlier run left", "run", run)
		// Its proxier's rules are left to kube-proxy's own start-up
		// clean-up: the dead run's helper cannot be trusted to be there.
		if slices.Contains(taken, run) {
			if _, err := giveBack(ctx, client, run, nil); err != nil {
				return runs, fmt.Errorf("run %s: TAKE_OVER=1: giving kube-proxy back: %w", run, err)
			}
		}
		if err := deleteRun(ctx, client, run); err != nil {
			return runs, err
		}
	}
	return runs, nil
}
