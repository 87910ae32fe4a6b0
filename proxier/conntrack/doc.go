// Package conntrack keeps the kernel's connection tracking in line with the
// Services: it deletes UDP flows stuck on a backend that is gone (or never
// DNATed at all), and applies the conntrack sysctls of the configuration.
// It talks netlink directly and must never flush flows it cannot tie to a
// Service of this proxier.
package conntrack
