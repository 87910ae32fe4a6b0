# proxyproof: the user's interface. `make help` lists the targets.
SHELL := /usr/bin/env bash
GO    ?= go
BIN   ?= _output/bin
# go test flags; CI may add -v.
TESTFLAGS ?=
# Packages run by `make test`. Kernel tests need root; they say so and skip
# only when it is truly missing.
PKGS  ?= ./...

.PHONY: help build test unit lint bench bench-kernel deps e2e e2e-smoke validate clean cluster-up cluster-down kind-images conformance conformance-deps terraform-provider

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
	@echo "             label churn reads CHURN_REPLICAS=50 (ipvs: 10) CHURN_RATE=20 CHURN_KEEPALIVE=10 CHURN_MAX_SURGE=25% CHURN_MAX_UNAVAILABLE=0 CHURN_SERVICES=3 CHURN_IDLE_SERVICES=2000 (ipvs: 300)"
	@echo "make e2e PROVIDER=kubeconfig KUBECONFIG=path [CONTEXT=name]  the suite against an existing cluster and the proxier it runs"
	@echo "             (PROXIER=ours|kube-proxy MODE=m TAKE_OVER=1: that proxier in place of the cluster's kube-proxy on the tested nodes, kube-proxy given back after)"
	@echo "             (MODE=existing: each node's mode found; BACKEND_IMAGE= TOOLS_IMAGE= images it pulls, see make images; no outside client there)"
	@echo "make cluster-down PROVIDER=kubeconfig KUBECONFIG=path  remove what interrupted runs left there (their labelled namespaces, a take-over given back; ALL=1 every run's)"
	@echo "make images  the images a foreign cluster pulls, as tarballs in IMAGES_OUT=_output/images for your registry"
	@echo "make e2e-smoke    the suite's ClusterIP specs on every mode, local and kind, and on kind through terraform/tofu (part of make test)"
	@echo "make validate FROM=iptables TO=ipvs   pre-upgrade check on ONE cluster: suite in FROM, every node switched under load, suite in TO;"
	@echo "             one report (RUN_DIR/validate.md); PROVIDER PROXIER NODES=2 KEEP RUN_DIR as for e2e, LABEL=filter, VALIDATE_NAME=cluster;"
	@echo "             exits 0 nothing regressed, 1 regression, 2 could not run"
	@echo "make conformance  upstream's [sig-network] Service proxy specs (e2e.test built from source) on a kind cluster per mode, same report"
	@echo "             (PROVIDER=kind MODE=iptables|nftables|mixed|all NODE_MODES=m1,m2 PROXIER=ours|kube-proxy|PATH NODES=2 KEEP=1 RUN_DIR=dir PROCS=3 SPECS=file E2E_BIN=dir NAME=conformance)"
	@echo "make conformance-deps  its set-up alone: kind images, e2e.test + ginkgo + agnhost from source, upstream's test images (root)"
	@echo "make report RUN=<dir> / make report-compare A=<dir> B=<dir>"
	@echo "make gate    PR gate: suite + small bench judged against BASELINE (gate/baseline.json or a run dir) and gate/thresholds.yaml"
	@echo "             (LABEL=feature:clusterip MODE=all PROXIER=ours|kube-proxy|PATH SCALE=200x5 CHANGES=30 RUN_DIR=...); gate exits 0 pass, 1 regression, 2 could not run"
	@echo "make gate-baseline RUN=<gate run dir> [BASELINE=gate/baseline.json]   write the baseline from a run, on purpose"
	@echo "make certify vendor certification: our suite (+ upstream's network conformance specs where there is a kubelet) on every mode,"
	@echo "             bundle in RUN_DIR/bundle/ + bundle.tar.gz (PROVIDER MODE=all PROXIER LABEL RUN_DIR; PRODUCT_VENDOR PRODUCT_NAME"
	@echo "             PRODUCT_VERSION PRODUCT_WEBSITE_URL PRODUCT_DOCUMENTATION_URL PRODUCT_TYPE PRODUCT_DESCRIPTION required,"
	@echo "             PRODUCT_REPO_URL PRODUCT_LOGO_URL optional, or PRODUCT_FILE=yaml); exits 0 passed, 1 failures recorded, 2 no bundle"
	@echo "make verify-bundle BUNDLE=<dir or .tar.gz>  manifest, report vs JUnit, claims vs run.json; exits 0 ok, 1 mismatch (named), 2 bad input"
	@echo "make cluster-up   a local cluster (NAME=proxyproof NODES=3 MODE=iptables|nftables|ipvs or NODE_MODES=m1,m2 NODE_KERNELS=auto|host|vm,... PROXIER=ours|kube-proxy|PATH)"
	@echo "make cluster-down remove it (NAME=...)"
	@echo "make kind-images  Docker engine + the kind node, proxier, kube-proxy and netserver images, no registry (root)"
	@echo "make cluster-up PROVIDER=kind  the same on kind (NAME NODES MODE=iptables|nftables NODE_MODES PROXIER=ours|kube-proxy; KIND_NODE_IMAGE)"
	@echo "make e2e PROVIDER=terraform TF_DIR=<root module> [MODE= TF_VARS=k=v,...|file.tfvars TF_BIN=tofu|terraform|PATH KEEP=1]"
	@echo "             the suite on the cluster a Terraform/OpenTofu module makes (outputs kubeconfig or kubeconfig_path; examples in clusters/terraform/examples)"
	@echo "make terraform-provider  our proxyproof_cluster provider for tofu/terraform by hand: prints export TF_CLI_CONFIG_FILE=... (no registry)"

# Everything the tests need, each step cached and quick when done already:
# Debian packages, the kernel VM image (IPVS), the pinned control plane,
# a warm Go build cache for the programs each local cluster builds, the
# Docker engine with the kind images (built here, no registry), and
# OpenTofu built from source (PROVIDER=terraform's default TF_BIN).
deps:
	@hack/install-deps.sh
	@hack/vm/build-image.sh >/dev/null
	@hack/controlplane/build.sh >/dev/null
	@hack/build-programs.sh
	@hack/kind/build-images.sh >/dev/null
	@hack/tofu/build.sh >/dev/null

build:
	$(GO) build -o $(BIN)/proxier ./proxier/cmd/proxier

test: deps
	$(GO) test $(TESTFLAGS) -count=1 -timeout 30m $(PKGS)
	$(MAKE) e2e-smoke

# The smoke subset of the conformance suite `make test` runs: the ClusterIP
# specs on fresh local clusters, every mode the local provider runs, then on
# kind clusters (iptables and nftables: kind nodes share this kernel, which
# has no ip_vs), then on kind clusters declared in HCL (PROVIDER=terraform:
# our tofu, and terraform where one is on the PATH).
e2e-smoke:
	$(MAKE) e2e MODE=all PROXIER=ours ARGS='--label-filter=feature:clusterip'
	$(MAKE) e2e PROVIDER=kind MODE=all PROXIER=ours ARGS='--label-filter=feature:clusterip'
	$(MAKE) e2e PROVIDER=terraform TF_DIR=clusters/terraform/examples/kind-iptables ARGS='--label-filter=feature:clusterip'
	$(if $(shell command -v terraform),$(MAKE) e2e PROVIDER=terraform TF_BIN=terraform TF_DIR=clusters/terraform/examples/kind-nftables MODE=nftables ARGS='--label-filter=feature:clusterip')

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./suites/...

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
e2e: export TF_DIR := $(TF_DIR)
e2e: export TF_VARS := $(TF_VARS)
e2e: export TF_BIN := $(TF_BIN)
e2e:
	@$(GO) build -o $(BIN)/e2e ./suites/framework/cmd/e2e
	@$(BIN)/e2e --provider '$(PROVIDER)' --mode '$(E2E_MODE)' --node-modes '$(NODE_MODES)' --proxier '$(E2E_PROXIER)' \
		--nodes '$(if $(filter file default,$(origin NODES)),2,$(NODES))' --node-kernels '$(NODE_KERNELS)' --keep '$(KEEP)' --run-dir '$(RUN_DIR)' \
		--kubeconfig '$(E2E_KUBECONFIG)' --context '$(CONTEXT)' --backend-image '$(BACKEND_IMAGE)' --take-over '$(TAKE_OVER)' \
		--command "make e2e$(if $(filter-out local,$(PROVIDER)), PROVIDER=$(PROVIDER))$(if $(FOREIGN), KUBECONFIG=$(E2E_KUBECONFIG)$(if $(CONTEXT), CONTEXT=$(CONTEXT))) MODE=$(or $(E2E_MODE),existing)$(if $(NODE_MODES), NODE_MODES=$(NODE_MODES)) PROXIER=$(or $(E2E_PROXIER),existing)$(if $(NODE_KERNELS), NODE_KERNELS=$(NODE_KERNELS))$(if $(TF_DIR), TF_DIR=$(TF_DIR))$(if $(TF_VARS), TF_VARS=$(TF_VARS))$(if $(TF_BIN), TF_BIN=$(TF_BIN))$${E2E_ARGS:+ ARGS=\"$$E2E_ARGS\"}" --args "$$E2E_ARGS"

# NODE_MODES alone means MODE=mixed, as for cluster-up.
# PROVIDER=kubeconfig: any existing cluster, reached only through KUBECONFIG
# (CONTEXT= picks a context). MODE and PROXIER default to existing there
# (test what the nodes run; each node's mode is found, not assumed), and
# only the KUBECONFIG given on make's command line counts: one inherited
# from the shell could name a production cluster.
FOREIGN        = $(filter kubeconfig,$(PROVIDER))
MODE_DEFAULT   = $(filter file default,$(origin MODE))
E2E_MODE       = $(if $(and $(FOREIGN),$(MODE_DEFAULT)),,$(if $(and $(NODE_MODES),$(MODE_DEFAULT)),mixed,$(MODE)))
E2E_PROXIER    = $(if $(and $(FOREIGN),$(filter file default,$(origin PROXIER))),,$(PROXIER))
E2E_KUBECONFIG = $(if $(filter command line,$(origin KUBECONFIG)),$(KUBECONFIG))
CONTEXT       ?=
BACKEND_IMAGE ?=
TAKE_OVER     ?=

# Pre-upgrade validation (suites/validate): one cluster made in FROM, the
# suite in FROM, every node switched to TO under load (label migration),
# the suite in TO, one report. A switch to or from ipvs on this kernel puts
# every node in the kernel VM from the start (a namespace node cannot
# move there).
FROM ?=
TO   ?=
VALIDATE_NAME ?=
validate:
	@$(GO) build -o $(BIN)/validate ./suites/validate/cmd/validate
	@$(BIN)/validate --from '$(FROM)' --to '$(TO)' --provider '$(PROVIDER)' --proxier '$(PROXIER)' \
		--nodes '$(if $(filter file default,$(origin NODES)),2,$(NODES))' --keep '$(KEEP)' --run-dir '$(RUN_DIR)' \
		--name '$(VALIDATE_NAME)' --label '$(LABEL)' \
		--command "make validate FROM=$(FROM) TO=$(TO) PROVIDER=$(PROVIDER) PROXIER=$(PROXIER)$(if $(LABEL), LABEL='$(LABEL)')"

clean:
	rm -rf _output

# Our Terraform/OpenTofu provider (proxyproof_cluster) for use by hand:
# built into _output/terraform/plugins with a CLI config that takes it
# from there and every other provider from the filesystem mirror, never
# from a registry. Prints the export line for TF_CLI_CONFIG_FILE.
terraform-provider:
	@$(GO) run ./clusters/terraform/cmd/tfplugin _output/terraform

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
ifeq ($(PROVIDER),kubeconfig)
	@test -n '$(E2E_KUBECONFIG)' || { echo "make cluster-down PROVIDER=kubeconfig KUBECONFIG=<path> [CONTEXT=name] [ALL=1]" >&2; exit 2; }
	@$(GO) build -o $(BIN)/kubeconfigcluster ./clusters/kubeconfig/cmd/kubeconfigcluster
	@$(BIN)/kubeconfigcluster down --kubeconfig '$(E2E_KUBECONFIG)' --context '$(CONTEXT)' $(if $(filter 1,$(ALL)),--all)
else ifeq ($(PROVIDER),kind)
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

# The images a cluster the suite did not make pulls (PROVIDER=kubeconfig),
# as docker-archive tarballs in IMAGES_OUT for the user's registry:
# netserver.tar (BACKEND_IMAGE: the backends, client pods and netprobe),
# proxier.tar (TOOLS_IMAGE: the node helper's iptables, nft, ipset,
# conntrack) and kube-proxy.tar. Built here with no registry (as
# kind-images); push with e.g. `docker load -i netserver.tar && docker tag
# proxyproof/netserver:latest REGISTRY/netserver:TAG && docker push ...`.
.PHONY: images
IMAGES_OUT ?= _output/images
images:
	@hack/kind/build-images.sh >/dev/null
	@mkdir -p '$(IMAGES_OUT)'
	@for i in netserver:proxyproof/netserver:latest proxier:proxyproof/proxier:dev kube-proxy:proxyproof/kube-proxy:v1.34.4; do \
		docker save -o '$(IMAGES_OUT)'/$${i%%:*}.tar $${i#*:} && echo '$(IMAGES_OUT)'/$${i%%:*}.tar; done

# Upstream's own [sig-network] specs that exercise the Service proxy
# (suites/conformance, spec list suites/conformance/specs.yaml), e2e.test
# built from source at the pinned version (hack/conformance/build.sh),
# on a fresh cluster per mode from a provider whose nodes run a real
# kubelet (kind; PROVIDER=local is refused). Parameters are checked first
# (exit 2), then the set-up runs (kind images, e2e.test, ginkgo and
# upstream's test images built here, no registry), then per mode: cluster
# up, e2e.test, cluster down (KEEP=1 keeps it). RUN_DIR (default
# runs/<time>-conformance-<mode>) gets <mode>/junit_01.xml and e2e.log as
# e2e.test wrote them, conformance.json, PRODUCT.yaml and the same
# report.html as make e2e. PROCS specs run at once (ginkgo --procs).
# The first e2e.test build takes ~15 minutes here on a warm control-plane
# cache; it is not part of make deps.
PROCS  ?= 3
SPECS  ?=
E2E_BIN ?=
CONFORMANCE_FLAGS = --provider '$(if $(filter file default,$(origin PROVIDER)),kind,$(PROVIDER))' \
	--mode '$(if $(filter file default,$(origin MODE)),all,$(MODE))' --proxier '$(PROXIER)' \
	--nodes '$(if $(filter file default,$(origin NODES)),2,$(NODES))' --keep '$(KEEP)' --run-dir '$(RUN_DIR)' \
	--node-modes '$(NODE_MODES)' --name '$(if $(filter file default,$(origin NAME)),conformance,$(NAME))' --procs '$(PROCS)' --specs '$(SPECS)' --bin '$(E2E_BIN)'
conformance:
	@$(GO) build -o $(BIN)/conformance ./suites/conformance/cmd/conformance
	@$(BIN)/conformance $(CONFORMANCE_FLAGS) \
		--command "make conformance$(if $(filter command line,$(origin PROVIDER)), PROVIDER=$(PROVIDER))$(if $(filter command line,$(origin MODE)), MODE=$(MODE))$(if $(filter command line,$(origin PROXIER)), PROXIER=$(PROXIER))"

conformance-deps:
	@$(GO) build -o $(BIN)/conformance ./suites/conformance/cmd/conformance
	@$(BIN)/conformance $(CONFORMANCE_FLAGS) --setup-only

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

# Vendor certification (suites/certify): our suite (LABEL, default the full
# suite) on every mode the provider runs (MODE=all), and upstream's network
# conformance specs where the provider has a real kubelet (make
# conformance's runner; local has none and says so in the bundle), each in
# its run directory (RUN_DIR/suite, RUN_DIR/upstream) merged into one fresh
# run directory (RUN_DIR, default runs/<time>-certify) with the bundle as
# RUN_DIR/bundle/ and RUN_DIR/bundle.tar.gz: junit_01.xml, e2e.log,
# PRODUCT.yaml, report.html, run.json, versions.json and SHA256SUMS.
# PRODUCT.yaml's fields come from PRODUCT_VENDOR PRODUCT_NAME
# PRODUCT_VERSION PRODUCT_WEBSITE_URL PRODUCT_REPO_URL
# PRODUCT_DOCUMENTATION_URL PRODUCT_LOGO_URL PRODUCT_TYPE
# PRODUCT_DESCRIPTION (or PRODUCT_FILE=a YAML file with PRODUCT.yaml's
# keys), read from the environment (make passes command-line variables
# there); a missing required one is refused before anything runs. Exit:
# 0 bundle written and every spec passed, 1 bundle written with failures,
# 2 no bundle (bad parameters, a run that could not be done).
.PHONY: certify verify-bundle
certify:
	@$(GO) build -o $(BIN)/e2e ./suites/framework/cmd/e2e
	@$(GO) build -o $(BIN)/report ./reports/cmd/report
	@$(GO) build -o $(BIN)/certify ./suites/certify/cmd/certify
	$(if $(wildcard suites/conformance/cmd/conformance),@$(GO) build -o $(BIN)/conformance ./suites/conformance/cmd/conformance)
	@$(BIN)/certify --provider '$(PROVIDER)' --mode '$(if $(filter file default,$(origin MODE)),all,$(MODE))' \
		--proxier '$(PROXIER)' --nodes '$(if $(filter file default,$(origin NODES)),2,$(NODES))' --label '$(LABEL)' \
		--run-dir '$(RUN_DIR)' --command "make certify PROVIDER=$(PROVIDER)$(if $(filter command line,$(origin MODE)), MODE=$(MODE))$(if $(LABEL), LABEL='$(LABEL)')"

# Checks a bundle (directory or .tar.gz): the manifest, report vs JUnit,
# claims vs run.json. Exit 0 verified, 1 a mismatch (the first file or
# claim is named), 2 BUNDLE names nothing to verify; make reports either
# failure as its "Error 1" / "Error 2" line.
verify-bundle:
	@test -n '$(BUNDLE)' || { echo "make verify-bundle BUNDLE=<bundle directory or .tar.gz>" >&2; exit 2; }
	@$(GO) build -o $(BIN)/report ./reports/cmd/report
	@$(BIN)/report verify '$(BUNDLE)'
