# proxyproof: the user's interface. `make help` lists the targets.
SHELL := /usr/bin/env bash
GO    ?= go
BIN   ?= _output/bin
# go test flags; CI may add -v.
TESTFLAGS ?=
# Packages run by `make test`. Kernel tests need root; they say so and skip
# only when it is truly missing.
PKGS  ?= ./...

.PHONY: help build test unit lint bench deps e2e clean

help:
	@echo "make build   build the proxier into $(BIN)/"
	@echo "make test    install test dependencies, then run every test (root: kernel tests included)"
	@echo "make lint    gofmt + go vet"
	@echo "make bench   proxier benchmarks (render and real-kernel apply)"
	@echo "make e2e     the conformance suite on the local provider (MODE=iptables|nftables|ipvs|all)"

# Everything the tests need, each step cached and quick when done already:
# Debian packages, the kernel VM image (IPVS), the pinned control plane.
deps:
	@hack/install-deps.sh
	@hack/vm/build-image.sh >/dev/null
	@hack/controlplane/build.sh >/dev/null

build:
	$(GO) build -o $(BIN)/proxier ./proxier/cmd/proxier

test: deps
	$(GO) test $(TESTFLAGS) -count=1 -timeout 30m $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

BENCH ?= .
bench: deps
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -timeout 60m ./proxier/...

e2e:
	@echo "make e2e: the conformance suite (suites/) has not landed yet; see README.md 'Status'." >&2
	@exit 2

clean:
	rm -rf _output
