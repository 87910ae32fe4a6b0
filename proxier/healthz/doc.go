// Package healthz serves kube-proxy's health endpoints: the proxier's own
// /healthz and /livez (is the sync loop keeping up?) and one HTTP server per
// healthCheckNodePort for load balancers of externalTrafficPolicy Local
// Services. It only reports; it must never change kernel state.
package healthz
