// Package behaviour is the table of Service behaviours every proxy mode must
// show on a real kernel: a node namespace with local and remote pods, a client
// outside the cluster network, and probes that assert what a user notices
// (which backend answered, which source IP it saw, refused vs timed out).
// Each mode's kernel test runs the same table unchanged; nothing here may
// know which mode it drives.
package behaviour
