# dpm-netconf: every entry point. `make help` lists them.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BUILD := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'
FUZZTIME ?= 20s
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: help build test unit test-s390x fuzz lint bench clean

help:
	@echo "make build       static binaries bin/dpm-netconf-{amd64,s390x}"
	@echo "make test        everything CI runs: lint, unit tests (amd64 and s390x under qemu-user), fuzzing"
	@echo "make unit        unit tests on this machine (root: also the netlink tests)"
	@echo "make test-s390x  unit tests cross-built for s390x, run under qemu-s390x-static (big-endian)"
	@echo "make fuzz        fuzz the command-line parser for FUZZTIME (default 20s)"
	@echo "make lint        gofmt, go vet, staticcheck"
	@echo "make bench       the benchmarks in README's performance section"

build: bin/dpm-netconf-amd64 bin/dpm-netconf-s390x

bin/dpm-netconf-%: FORCE
	GOARCH=$* $(BUILD) -o $@ ./cmd/dpm-netconf
	@ls -l $@ | awk '{printf "%s: %.2f MiB\n", $$NF, $$5/1048576}'

FORCE:

test: lint unit test-s390x fuzz

unit:
	$(GO) test -race -count=1 ./...

test-s390x:
	CGO_ENABLED=0 GOARCH=s390x $(GO) test -count=1 -exec qemu-s390x-static ./...

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/cmdline/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 5x ./internal/apply/
	$(GO) test -run '^$$' -bench . -benchtime 2000x ./internal/ccw/

clean:
	rm -rf bin
