// Package compare diffs two loaded run directories (before/after an
// upgrade, mode A vs mode B, ours vs kube-proxy): specs that flipped,
// figures that moved, and bench figures as the ratio ours/upstream of each
// run (what make gate judges). It computes only; rendering is package html's.
package compare
