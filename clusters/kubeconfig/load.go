package kubeconfig

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Parameter names in the errors, as make e2e spells them.
const (
	EnvKubeconfig = "KUBECONFIG"
	EnvContext    = "CONTEXT"
)

// reachTimeout bounds the first call to the API server: an address that
// does not answer must fail the run in seconds, not after a client's
// default of minutes.
const reachTimeout = 15 * time.Second

// access is a kubeconfig context that was read, answers and may run the
// suite.
type access struct {
	path, context string
	raw           clientcmdapi.Config
	cfg           *rest.Config
	server        string
}

// load reads path and picks context (empty: the current context), each
// failure naming the file or the context and what would work.
func load(path, context string) (*access, error) {
	if path == "" {
		return nil, fmt.Errorf("%s is empty: PROVIDER=kubeconfig needs the path of a kubeconfig for the cluster under test", EnvKubeconfig)
	}
	raw, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s=%s: not a readable kubeconfig: %w", EnvKubeconfig, path, err)
	}
	names := contextNames(raw)
	if context == "" {
		context = raw.CurrentContext
		if context == "" {
			return nil, fmt.Errorf("%s=%s sets no current-context: name one with %s= (its contexts: %s)", EnvKubeconfig, path, EnvContext, list(names))
		}
	}
	kctx, ok := raw.Contexts[context]
	if !ok {
		return nil, fmt.Errorf("%s=%q: no such context in %s=%s (its contexts: %s)", EnvContext, context, EnvKubeconfig, path, list(names))
	}
	cc := clientcmd.NewNonInteractiveClientConfig(*raw, context, &clientcmd.ConfigOverrides{}, nil)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("%s=%s, context %s: %w", EnvKubeconfig, path, context, err)
	}
	server := cfg.Host
	if c, ok := raw.Clusters[kctx.Cluster]; ok {
		server = c.Server
	}
	return &access{path: path, context: context, raw: *raw, cfg: cfg, server: server}, nil
}

func contextNames(raw *clientcmdapi.Config) []string {
	var names []string
	for n := range raw.Contexts {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// needed are the permissions the suite cannot run without, each checked
// with a SelfSubjectAccessReview before anything is created: its own
// namespaces, and the nodes it tests.
var needed = []authorizationv1.ResourceAttributes{
	{Verb: "create", Resource: "namespaces"},
	{Verb: "delete", Resource: "namespaces"},
	{Verb: "list", Resource: "nodes"},
}

// neededToTakeOver are the permissions of the take-over (TAKE_OVER=1,
// takeover.go) beyond needed: kube-proxy's DaemonSet and configuration
// read and moved aside, the tested nodes labelled, the run's proxier bound
// to kube-proxy's ClusterRole.
var neededToTakeOver = []authorizationv1.ResourceAttributes{
	{Verb: "update", Group: "apps", Resource: "daemonsets", Namespace: "kube-system"},
	{Verb: "get", Resource: "configmaps", Namespace: "kube-system"},
	{Verb: "patch", Resource: "nodes"},
	{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"},
	{Verb: "delete", Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"},
	{Verb: "bind", Group: "rbac.authorization.k8s.io", Resource: "clusterroles", Name: nodeProxierRole},
}

// check reaches the API server and asks it whether this user may run the
// suite (and, takeOver, take kube-proxy's place); it creates nothing.
func (a *access) check(ctx context.Context, takeOver bool) error {
	ctx, cancel := context.WithTimeout(ctx, reachTimeout)
	defer cancel()
	cfg := rest.CopyConfig(a.cfg)
	cfg.Timeout = reachTimeout
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("%s: client: %w", a, err)
	}
	if _, err := client.Discovery().ServerVersion(); err != nil {
		return fmt.Errorf("API server %s (%s) does not answer: %w", a.server, a, err)
	}
	var denied []string
	attrs := needed
	if takeOver {
		attrs = append(slices.Clone(needed), neededToTakeOver...)
	}
	for _, attr := range attrs {
		r, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &attr},
		}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("%s: ask the API server whether this user may %s %s: %w", a, attr.Verb, attr.Resource, err)
		}
		if !r.Status.Allowed {
			denied = append(denied, describe(attr))
		}
	}
	if len(denied) > 0 {
		why := "the suite works in namespaces of its own and reads the nodes it tests"
		if takeOver {
			why += "; TAKE_OVER=1 also moves kube-proxy's DaemonSet aside, labels the tested nodes and binds its proxier to " + nodeProxierRole
		}
		return fmt.Errorf("%s: %w: the user may not %s; %s: grant these verbs (RBAC) or use another context",
			a, ErrForbidden, strings.Join(denied, ", "), why)
	}
	return nil
}

// ErrForbidden is wrapped by a refusal for a permission the suite needs.
var ErrForbidden = errors.New("permission missing")

func (a *access) String() string {
	return fmt.Sprintf("context %s of %s=%s", a.context, EnvKubeconfig, a.path)
}

// writeContext writes a's context alone to path, credentials inlined
// (files named relative to the user's kubeconfig would not resolve from
// path).
func writeContext(a *access, path string) error {
	cfg := a.raw.DeepCopy()
	cfg.CurrentContext = a.context
	if err := clientcmdapi.MinifyConfig(cfg); err != nil {
		return fmt.Errorf("%s: %w", a, err)
	}
	if err := clientcmdapi.FlattenConfig(cfg); err != nil {
		return fmt.Errorf("%s: %w", a, err)
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("%s: write %s: %w", a, path, err)
	}
	return nil
}

// describe is attr as a refusal names it: verb, resource, and the
// namespace or name it was asked for (cluster scope otherwise).
func describe(attr authorizationv1.ResourceAttributes) string {
	s := attr.Verb + " " + attr.Resource
	switch {
	case attr.Name != "":
		s += " " + attr.Name
	case attr.Namespace != "":
		s += " in " + attr.Namespace
	default:
		s += " (cluster scope)"
	}
	return s
}
