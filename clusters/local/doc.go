// Package local runs a whole Kubernetes cluster on one Linux machine with
// no Docker, registry or internet: a real control plane on loopback, one
// network namespace per node (node agent + proxier inside), joined by an
// underlay bridge in a namespace of its own. It must never put an
// interface in the host's root namespace nor give any cluster namespace a
// route out of the machine; Destroy leaves nothing behind.
package local
