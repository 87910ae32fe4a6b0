// Package reports turns a suite run directory into what people read: one
// self-contained HTML page, merged JUnit XML, a certification bundle and a
// compare view of two runs. It only reads a run directory; it never runs a
// test, touches a cluster or fetches anything from the network.
//
// # The run directory (the contract with suites/ and make e2e)
//
//	<run>/run.json                   required: the environment (Meta below)
//	<run>/run.log                    optional: the runner's log, goes into the bundle
//	<run>/bench.json                 optional: benchmark rows (issue 8), charts + table
//	<run>/<mode>/ginkgo.json         required per mode: ginkgo --json-report output
//	                                 (an array of types.Report, or one Report object)
//	<run>/<mode>/dumps/<spec-id>/<node>.txt
//	                                 optional: the proxier's rules on that node when
//	                                 the spec failed (iptables-save, nft list ruleset,
//	                                 ipvsadm -Ln); <spec-id> is entry.SpecID(FullText)
//
// run.json (every field optional except "modes"):
//
//	{
//	  "name": "e2e-20250601-101500",
//	  "provider": "local", "nodes": 3, "kernel": "6.18.0",
//	  "kubernetesVersion": "v1.34.4",
//	  "proxier": {"name": "proxyproof", "version": "v0.1.0"},
//	  "command": "make e2e MODE=all",
//	  "start": "2025-06-01T10:15:00Z", "end": "2025-06-01T10:31:12Z",
//	  "modes": [{"name": "nftables", "nodes": {"node-1": "nftables", "node-2": "nftables"},
//	             "start": "...", "end": "..."}]
//	}
//
// A mode listed in run.json whose ginkgo.json is missing or corrupt is an
// error naming the file; a mode directory with a ginkgo.json that run.json
// does not list is read too. Output files are written whole or not at all.
//
// # Report entries (recorded by the suite with ginkgo's AddReportEntry)
//
//	figure:<name>  value entry.Figure: {"name","unit","mode","title",
//	               "values":[...]} raw samples (percentiles computed here), or
//	               "percentiles":{"p50":..,"p99":..,"max":..} precomputed, or
//	               "points":[{"x":..,"y":..}] with "xUnit" for a series
//	               (failure timelines, conntrack fill). The same name in
//	               several modes is one chart with the modes side by side;
//	               samples of one name in one mode accumulate across specs.
//	probe          value entry.Probe: {"description": "pod client-a on node-2 ->
//	               10.96.0.10:80 (default/web)", "node", "service", "expected",
//	               "seen", "failed"} or just the description as a string.
//	dump           value entry.Dump: {"node","kind","path"}, path relative to
//	               <run>/<mode>; for dumps not under the conventional directory.
//
// Specs are grouped by their "feature:<name>" label (else their first label).
// bench.json is run.Bench, written by the side-by-side bench (suites/bench):
// {"started","host","note","settings",rows":[{"mode","backend","proxier",
// "services","endpoints","first_sync_s","change_p50_ms",...}]}; the report
// draws each figure per scale, the proxiers side by side, and prints the
// bench's table with the ratio of the first two proxiers (ours/upstream).
package reports
