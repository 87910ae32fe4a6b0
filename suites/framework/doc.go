// Package framework is what the conformance suites (suites/services) stand
// on: the cluster for one mode from the environment make e2e sets, netserver
// backends and Services, probes from pods and nodes, deadline waits that say
// what they last saw, and figures/probes recorded as report entries. It must
// never know which proxier runs (the suite has to pass against upstream
// kube-proxy too) and never touch a cluster it did not create.
package framework
