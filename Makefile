# proxyproof: the user's interface. `make help` lists the targets.
SHELL := /usr/bin/env bash
GO    ?= go
BIN   ?= _output/bin
# go test flags; CI may add -v.
TESTFLAGS ?=
# Packages run by `make test`. Kernel tests need root; they say so and skip
# only when it is truly missing.
PKGS  ?= ./...

.PHONY: help build test unit lint bench bench-kernel deps e2e e2e-smoke clean cluster-up cluster-down kind-images

help:
	@echo "make build   build the proxier into $(BIN)/"
	@echo "make test    install test dependencies, then run every test (root: kernel tests included)"
	@echo "make lint    gofmt + go vet"
	@echo "make bench   ours vs upstream kube-proxy side by side: table, bench.json, report.html (SCALE=2000x5,10000x10 BENCH_MODES=...; needs root)"
	@echo "make bench-kernel Go benchmarks: render and state-to-kernel apply per mode (BENCH=regexp)"
	@echo "make e2e     the conformance suite on the local provider, set-up included (MODE=iptables|nftables|ipvs|mixed|all NODE_MODES=m1,m2,... PROXIER=ours|kube-proxy|PATH NODES=2 KEEP=1 RUN_DIR=dir ARGS=ginkgo flags)"
	@echo "             every run takes a mode census of each node (kernel, declared and carried mode, leftovers) at its start and end"
	@echo "             NODE_KERNELS=auto|host|vm (one for all nodes or one per node, e.g. auto,vm): vm gives the node its own kernel in the kernel VM, any mode (local only)"
	@echo "             label conntrack: the exhaustion spec needs a node with its own kernel, or CONNTRACK_LOWER_HOST_LIMIT=1 to lower the host's nf_conntrack_max for the run"
	@echo "             label churn reads CHURN_REPLICAS=50 (ipvs: 10) CHURN_RATE=20 CHURN_KEEPALIVE=10 CHURN_MAX_SURGE=25% CHURN_MAX_UNAVAILABLE=0"
	@echo "make e2e-smoke    the suite's ClusterIP specs on every mode, local and kind (part of make test)"
	@echo "make report RUN=<dir> / make report-compare A=<dir> B=<dir>"
	@echo "make gate    PR gate: suite + small bench judged against BASELINE (gate/baseline.json or a run dir) and gate/thresholds.yaml"
	@echo "             (LABEL=feature:clusterip MODE=all PROXIER=ours|kube-proxy|PATH SCALE=200x5 CHANGES=30 RUN_DIR=...); gate exits 0 pass, 1 regression, 2 could not run"
	@echo "make gate-baseline RUN=<gate run dir> [BASELINE=gate/baseline.json]   write the baseline from a run, on purpose"
	@echo "make cluster-up   a local cluster (NAME=proxyproof NODES=3 MODE=iptables|nftables|ipvs or NODE_MODES=m1,m2 NODE_KERNELS=auto|host|vm,... PROXIER=ours|kube-proxy|PATH)"
	@echo "make cluster-down remove it (NAME=...)"
	@echo "make kind-images  Docker engine + the kind node, proxier, kube-proxy and netserver images, no registry (root)"
	@echo "make cluster-up PROVIDER=kind  the same on kind (NAME NODES MODE=iptables|nftables NODE_MODES PROXIER=ours|kube-proxy; KIND_NODE_IMAGE)"

# Everything the tests need, each step cached and quick when done already:
# Debian packages, the kernel VM image (IPVS), the pinned control plane,
# a warm Go build cache for the programs each local cluster builds, and
# the Docker engine with the kind images (built here, no registry).
deps:
	@hack/install-deps.sh
	@hack/vm/build-image.sh >/dev/null
	@hack/controlplane/build.sh >/dev/null
	@hack/build-programs.sh
	@hack/kind/build-images.sh >/dev/null

build:
	$(GO) build -o $(BIN)/proxier ./proxier/cmd/proxier

test: deps
	$(GO) test $(TESTFLAGS) -count=1 -timeout 30m $(PKGS)
	$(MAKE) e2e-smoke

# The smoke subset of the conformance suite `make test` runs: the ClusterIP
# specs on fresh local clusters, every mode the local provider runs, then on
# kind clusters (iptables and nftables: kind nodes share this kernel, which
# has no ip_vs).
e2e-smoke:
	$(MAKE) e2e MODE=all PROXIER=ours ARGS='--label-filter=feature:clusterip'
	$(MAKE) e2e PROVIDER=kind MODE=all PROXIER=ours ARGS='--label-filter=feature:clusterip'

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Ours vs upstream kube-proxy side by side (suites/bench; needs root):
# same apiserver and objects, a fresh node namespace per proxier and mode,
# figures read from the kernel. Prints the table; the run directory
# (_output/bench/<time>, or BENCH_FLAGS=--out DIR) gets bench.json, run.json
# and report.html with the figures as charts.
# SCALE=200x5 is the quick path; BENCH_FLAGS e.g. --changes 100 --timeout 300s.
# IPVS rows run both proxiers in the kernel VM (no ip_vs here; TCG, compare
# VM to VM only) at each SCALE capped to --ipvs-scale (500x5), 30 changes
# (--ipvs-changes); the VM image is cached under /var/cache/proxyproof/vm.
SCALE       ?= 2000x5,10000x10
BENCH_MODES ?= iptables/nft,iptables/legacy,nftables,ipvs
BENCH_FLAGS ?=
bench: deps build
	@$(GO) build -o $(BIN)/bench ./suites/bench/cmd/bench
	$(BIN)/bench --scale '$(SCALE)' --modes '$(BENCH_MODES)' --ours $(BIN)/proxier \
		--command "make bench SCALE=$(SCALE) BENCH_MODES=$(BENCH_MODES)$(if $(BENCH_FLAGS), BENCH_FLAGS='$(BENCH_FLAGS)')" $(BENCH_FLAGS)

# bench-compare is bench's earlier name.
.PHONY: bench-compare
bench-compare: bench

# The Go benchmarks: rendering and state-to-kernel apply per mode, no API
# server (kernel ones need root; IPVS ones run in the kernel VM).
BENCH ?= .
bench-kernel: deps
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -timeout 60m ./proxier/...

# The conformance suite (suites/services) on fresh local clusters, one per
# mode (MODE=iptables|nftables|ipvs|all; on a kernel without ip_vs the
# ipvs nodes run in the kernel VM; PROVIDER=local is the default).
# MODE=mixed is one cluster whose nodes run different modes: NODE_MODES=
# m1,m2,... (at least 2), default one node per mode the provider can run
# here; its results go under <run dir>/mixed. Every run takes the mode
# census (suites/census) at its start and end; a node running another mode
# than it was made to, or another mode's leftovers, fails the run. NODES defaults to 2 here; PROXIER=ours|kube-proxy|PATH; KEEP=1
# keeps the clusters; RUN_DIR (default runs/<time>-<mode>) gets run.json,
# <mode>/ginkgo.json + junit.xml and the report. ARGS go to Ginkgo, e.g.
# ARGS='--label-filter=feature:clusterip' or ARGS='--focus=UDP'. Needs root.
# The runner checks every parameter (exit 2 on a bad one), then runs the
# set-up itself (install-deps, the control plane, the VM image for ipvs).
# Built, not `go run`: go run turns exit status 2 into 1 and adds a line.
# ARGS reaches the runner through the environment, never through the
# shell: ARGS='--label-filter=a || b' must not run `b`.
e2e: export E2E_ARGS := $(ARGS)
e2e:
	@$(GO) build -o $(BIN)/e2e ./suites/framework/cmd/e2e
	@$(BIN)/e2e --provider '$(PROVIDER)' --mode '$(E2E_MODE)' --node-modes '$(NODE_MODES)' --proxier '$(PROXIER)' \
		--nodes '$(if $(filter file default,$(origin NODES)),2,$(NODES))' --node-kernels '$(NODE_KERNELS)' --keep '$(KEEP)' --run-dir '$(RUN_DIR)' \
		--command "make e2e MODE=$(E2E_MODE)$(if $(NODE_MODES), NODE_MODES=$(NODE_MODES)) PROXIER=$(PROXIER)$(if $(NODE_KERNELS), NODE_KERNELS=$(NODE_KERNELS))$${E2E_ARGS:+ ARGS=\"$$E2E_ARGS\"}" --args "$$E2E_ARGS"

# NODE_MODES alone means MODE=mixed, as for cluster-up.
E2E_MODE = $(if $(and $(NODE_MODES),$(filter file default,$(origin MODE))),mixed,$(MODE))

clean:
	rm -rf _output

# The local cluster (clusters/local): network-namespace nodes on this
# machine, kept running after `make` returns; needs root.
NAME       ?= proxyproof
NODES      ?= 3
MODE       ?= iptables
NODE_MODES ?=
# Each node's kernel: auto (default), host or vm, once for all or per node.
NODE_KERNELS ?=
PROXIER    ?= ours
PROVIDER   ?= local

# Its own set-up first, as make e2e does. PROVIDER=kind: the same
# parameters on a kind cluster (clusters/kind; the images from make
# kind-images, or KIND_NODE_IMAGE=kindest/node:<version>). Local: packages,
# the control plane, and the kernel VM image when a node runs ipvs.
cluster-up:
	@hack/install-deps.sh
ifeq ($(PROVIDER),kind)
	@hack/kind/build-images.sh >/dev/null
	@$(GO) build -o $(BIN)/kindcluster ./clusters/kind/cmd/kindcluster
	@$(BIN)/kindcluster up --name '$(NAME)' --nodes '$(NODES)' --mode '$(MODE)' $(if $(NODE_MODES),--node-modes '$(NODE_MODES)') --node-kernels '$(NODE_KERNELS)' --proxier '$(PROXIER)'
else
	@hack/controlplane/build.sh >/dev/null
	$(if $(findstring ipvs,$(MODE) $(NODE_MODES))$(findstring vm,$(NODE_KERNELS)),@hack/vm/build-image.sh >/dev/null)
	@$(GO) build -o $(BIN)/localcluster ./clusters/local/cmd/localcluster
	@$(BIN)/localcluster up --name '$(NAME)' --nodes '$(NODES)' --mode '$(MODE)' $(if $(NODE_MODES),--node-modes '$(NODE_MODES)') --node-kernels '$(NODE_KERNELS)' --proxier '$(PROXIER)'
endif

cluster-down:
ifeq ($(PROVIDER),kind)
	@$(GO) build -o $(BIN)/kindcluster ./clusters/kind/cmd/kindcluster
	@$(BIN)/kindcluster down --name '$(NAME)'
else
	@$(GO) build -o $(BIN)/localcluster ./clusters/local/cmd/localcluster
	@$(BIN)/localcluster down --name '$(NAME)'
endif

# The images kind clusters run, built here with no registry (hack/kind):
# starts Docker if needed, builds the node image proxyproof/kind-node:<k8s
# version> with kubeadm's control-plane images inside, and loads
# proxyproof/proxier:dev, proxyproof/kube-proxy:<k8s version> and
# proxyproof/netserver:latest into Docker. Cached under
# /var/cache/proxyproof/kind; prints the image names. Needs root.
kind-images:
	@hack/kind/build-images.sh

# The report of a suite run directory (reports/): report.html, junit.xml and
# bundle.tar.gz written into RUN; `make report-compare A=<run> B=<run>` writes
# OUT (default A/compare.html) with the specs that flipped and figures that moved.
.PHONY: report report-compare
RUN ?=
OUT ?=
report:
	@test -n '$(RUN)' || { echo "make report RUN=<run directory>" >&2; exit 2; }
	@$(GO) run ./reports/cmd/report $(if $(OUT),--out '$(OUT)') '$(RUN)'

report-compare:
	@test -n '$(A)' -a -n '$(B)' || { echo "make report-compare A=<run dir> B=<run dir> [OUT=file.html]" >&2; exit 2; }
	@$(GO) run ./reports/cmd/report compare --out '$(or $(OUT),$(A)/compare.html)' '$(A)' '$(B)'

# PR gating (suites/gate): the suite (LABEL, default the full suite; MODE,
# default every mode the provider runs) and a small side-by-side bench
# (SCALE=200x5, CHANGES=30) into RUN_DIR (default runs/<time>-gate, never
# an existing run), judged against BASELINE (a baseline file or a run
# directory) and the reviewed THRESHOLDS. summary.md lands in the run
# directory and in $$GITHUB_STEP_SUMMARY. The gate program exits 0 pass, 1
# regression, 2 could not run; make itself exits 2 for any failing recipe,
# so the recipe names the gate's status ("Error 1" / "Error 2" in make's
# line) and CI reads it from steps.<id>.outputs.status.
.PHONY: gate gate-baseline gate-tools
BASELINE   ?= gate/baseline.json
THRESHOLDS ?= gate/thresholds.yaml
LABEL      ?=
CHANGES    ?= 30
GATE_FLAGS  = --provider '$(PROVIDER)' --mode '$(if $(filter file default,$(origin MODE)),all,$(MODE))' --label '$(LABEL)' \
	--proxier '$(PROXIER)' --nodes '$(if $(filter file default,$(origin NODES)),2,$(NODES))' --thresholds '$(THRESHOLDS)' \
	--run-dir '$(RUN_DIR)' --scale '$(if $(filter file default,$(origin SCALE)),200x5,$(SCALE))' --changes '$(CHANGES)' \
	--bench-flags '$(BENCH_FLAGS)' --e2e $(BIN)/e2e --bench $(BIN)/bench --ours $(BIN)/proxier

gate-tools: deps build
	@$(GO) build -o $(BIN)/e2e ./suites/framework/cmd/e2e
	@$(GO) build -o $(BIN)/bench ./suites/bench/cmd/bench
	@$(GO) build -o $(BIN)/gate ./suites/gate/cmd/gate

gate: gate-tools
	@$(BIN)/gate run $(GATE_FLAGS) --baseline '$(BASELINE)' \
		--command "make gate$(if $(LABEL), LABEL='$(LABEL)')$(if $(filter command line,$(origin MODE)), MODE=$(MODE))$(if $(filter command line,$(origin PROXIER)), PROXIER=$(PROXIER)) BASELINE=$(BASELINE)"

# With RUN, the baseline of that run; without, a fresh run (same parameters
# as make gate) and its baseline. Either way only when asked.
gate-baseline: $(if $(RUN),,gate-tools)
	@$(GO) build -o $(BIN)/gate ./suites/gate/cmd/gate
	@run='$(RUN)'; if [ -z "$$run" ]; then run='$(or $(RUN_DIR),runs/$(shell date -u +%Y%m%d-%H%M%S)-baseline)'; \
		$(BIN)/gate run $(GATE_FLAGS) --run-dir "$$run" --baseline '' --command "make gate-baseline" || exit; fi; \
		$(BIN)/gate baseline --run "$$run" --out '$(BASELINE)'
