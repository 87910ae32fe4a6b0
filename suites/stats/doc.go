// Package stats judges load-balancing distributions: Pearson's chi-square
// test of counts per backend against an even spread, and the sample size
// that makes the test catch a backend getting twice its share. Pure math,
// no I/O, so its error rates are unit-tested.
package stats
