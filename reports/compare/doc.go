// Package compare diffs two loaded run directories (before/after an
// upgrade, mode A vs mode B, ours vs kube-proxy): specs that flipped and
// figures that moved. It computes only; rendering is package html's.
package compare
