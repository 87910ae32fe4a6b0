// Package bundle writes the certification bundle of a run: a .tar.gz with
// the merged JUnit XML, the run log, report.html and a PRODUCT.yaml
// template to fill in. The archive appears complete or not at all.
package bundle
