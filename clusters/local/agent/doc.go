// Package agent is the local provider's node agent, a tiny kubelet: it keeps
// its Node and Lease, wires pod networks (netns + veth, host-gw routes) and
// runs the pods bound to its node as local programs mapped from image names.
// It pulls no images and must never touch a namespace other than its node's
// and its own pods'.
package agent
