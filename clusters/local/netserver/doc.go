// Package netserver is the suite's test server, the program behind the
// proxyproof/netserver image: HTTP /hostname, /clientip, /healthz, /readyz and
// a UDP echo of hostname and client address. It must stay small, static and
// free of cluster dependencies, so it runs in a local pod and in an image alike.
package netserver
