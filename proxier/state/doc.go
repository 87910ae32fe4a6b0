// Package state turns Services, EndpointSlices and this node's Node into the
// node-local desired View that every proxy mode translates, and tracks what
// changed between snapshots. All Kubernetes Service semantics live here; the
// package must never touch the kernel nor let one bad API object spoil the rest.
package state
