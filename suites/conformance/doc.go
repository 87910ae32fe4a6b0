// Package conformance runs upstream Kubernetes' own [sig-network] specs
// that exercise the Service proxy (e2e.test built from source at the
// pinned version, hack/conformance) against a cluster per mode made by a
// clusters.Provider, and files the results in a run directory the
// reports package reads. It speaks to clusters.Provider and
// clusters.Cluster only, never to a concrete provider. The spec list
// (specs.yaml) says which specs run and, for each one left out, why.
//
// # The run directory (stable: make certify and verify-bundle read it)
//
//	<run>/run.json                  reports/run.Meta, as make e2e writes it; one
//	                                entry per mode in "modes"; "name" starts
//	                                with "conformance-"
//	<run>/run.log                   the runner's log
//	<run>/conformance.json          Summary: the spec list used (focus, skip with
//	                                why and reason, images), e2e.test's version
//	                                and flags, and per mode the cluster, the
//	                                run time, the counts and every selected spec
//	                                with its outcome (passed, failed, not run,
//	                                skipped) and upstream's message
//	<run>/<mode>/junit_01.xml       upstream's JUnit, written by e2e.test
//	                                --report-dir=<run>/<mode>, untouched (every
//	                                spec of e2e.test, the unselected as skipped)
//	<run>/<mode>/e2e.log            e2e.test's stdout and stderr, untouched
//	<run>/<mode>/ginkgo.json        the selected specs as reports/ginkgo reads
//	                                them, so report.html, report-compare and the
//	                                gate show upstream specs like the suite's own
//	<run>/report.html, junit.xml, bundle.tar.gz
//	                                make report's outputs, as for make e2e; the
//	                                bundle (reports/bundle) carries PRODUCT.yaml
//
// <mode> is iptables, nftables or ipvs. The CNCF conformance submissions
// (github.com/cncf/k8s-conformance) hold PRODUCT.yaml, e2e.log and
// junit_01.xml of one run: <run>/<mode>/ holds the last two for each mode
// as e2e.test wrote them; PRODUCT.yaml is the bundle's to write (make
// certify fills it in), not the runner's.
//
// A selected spec is never dropped silently: a spec the list skips (an
// image that cannot be built offline, a cloud, a feature gate, disruption)
// is in conformance.json and in the report as "not run" with the list's
// why; a spec e2e.test skipped itself is "skipped" with upstream's message.
package conformance
