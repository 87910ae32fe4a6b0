package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// UpdateService applies change to the current Service ns/name, retrying
// on conflicts, and returns the Service as the API server stored it and
// when it did: the start of a propagation measurement.
func (f *Framework) UpdateService(ctx context.Context, ns, name string, change func(*corev1.Service)) (*corev1.Service, time.Time, error) {
	var out *corev1.Service
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		svc, err := f.Client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(svc)
		out, err = f.Client.CoreV1().Services(ns).Update(ctx, svc, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("service %s/%s: update: %w", ns, name, err)
	}
	return out, time.Now(), nil
}

// SetLoadBalancerIngress writes status.loadBalancer.ingress of the
// LoadBalancer Service ns/name to ip, as a cloud's controller would (the
// local provider has none).
func (f *Framework) SetLoadBalancerIngress(ctx context.Context, ns, name, ip string) (*corev1.Service, error) {
	var out *corev1.Service
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		svc, err := f.Client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		out, err = f.Client.CoreV1().Services(ns).UpdateStatus(ctx, svc, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("service %s/%s: load balancer ingress %s: %w", ns, name, ip, err)
	}
	return out, nil
}

// HealthCheck is what a proxier's healthCheckNodePort server answered:
// the status code and kube-proxy's JSON body.
type HealthCheck struct {
	Code           int
	LocalEndpoints int
	Service        struct{ Namespace, Name string }
}

// HealthStatus is the kind of probe (cmd/netprobe) that answers with any
// HTTP status: "<code> <body>".
const HealthStatus = "status"

// ParseHealthCheck reads a HealthStatus probe's answer.
func ParseHealthCheck(r Result) (HealthCheck, error) {
	var hc HealthCheck
	if !r.OK {
		return hc, fmt.Errorf("no health check answer: %v", r)
	}
	code, body, _ := strings.Cut(r.Answer, " ")
	var err error
	if hc.Code, err = strconv.Atoi(code); err != nil {
		return hc, fmt.Errorf("health check answer %q: no status code", r.Answer)
	}
	var doc struct {
		Service        struct{ Namespace, Name string } `json:"service"`
		LocalEndpoints *int                             `json:"localEndpoints"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		return hc, fmt.Errorf("health check answer %q: body is not kube-proxy's JSON: %w", r.Answer, err)
	}
	if doc.LocalEndpoints == nil {
		return hc, fmt.Errorf("health check answer %q: no localEndpoints", r.Answer)
	}
	hc.LocalEndpoints, hc.Service = *doc.LocalEndpoints, doc.Service
	return hc, nil
}

// WaitHealthCheck polls the health check at url from src until it says
// code with localEndpoints and names Service ns/name, and returns the last
// answer.
func (f *Framework) WaitHealthCheck(ctx context.Context, src Source, url, ns, name string, code, localEndpoints int, timeout time.Duration) (HealthCheck, error) {
	var hc HealthCheck
	want := fmt.Sprintf("%d with localEndpoints %d for %s/%s", code, localEndpoints, ns, name)
	var last Result
	err := Poll(ctx, fmt.Sprintf("%s -> health check %s to answer %s", src.Description, url, want), timeout, 100*time.Millisecond, func(ctx context.Context) (bool, string) {
		last = f.Probe(ctx, src, HealthStatus, url, probeTimeout)
		var err error
		if hc, err = ParseHealthCheck(last); err != nil {
			return false, err.Error()
		}
		return hc.Code == code && hc.LocalEndpoints == localEndpoints && hc.Service.Namespace == ns && hc.Service.Name == name, last.Answer
	})
	f.RecordProbe(src, HealthStatus, url, ns+"/"+name, want, last.String(), err != nil)
	return hc, err
}
