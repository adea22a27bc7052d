# robodistill — see README.md. Every target that needs system packages runs scripts/bootstrap
# first (idempotent: a second run only checks).
SHELL := /bin/bash
GO    ?= $(shell cat .cache/go 2>/dev/null || command -v go || echo /usr/local/go/bin/go)
OUT   ?= out
export CGO_ENABLED := 1
# A Go older than go.mod asks for (Debian's own) fetches the right toolchain from the module proxy.
export GOTOOLCHAIN ?= auto

.PHONY: all bootstrap build test bench lint demo clean

all: build

bootstrap:
	@scripts/bootstrap

build: bootstrap
	@mkdir -p bin
	$(GO) build -o bin/robodistill ./distill/cmd/robodistill
	$(GO) build -o bin/robodistilld ./daemon/cmd/robodistilld
	$(GO) build -o bin/daemonbench ./daemon/cmd/daemonbench

# The race detector instruments the Go side; MuJoCo runs as C underneath.
test: bootstrap
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 25m ./...
	$(GO) test -count=1 -tags matprofile ./vision/

bench: build
	bin/robodistill bench sim --json=false
	bin/robodistill bench bridge --json=false
	bin/robodistill bench label --json=false
	bin/robodistill bench reward --json=false
	bin/robodistill bench model --json=false
	bin/robodistill bench policy --json=false
	bin/daemonbench --daemon bin/robodistilld --robodistill bin/robodistill
	$(GO) test -run '^$$' -bench . -benchtime 2s ./sim/...

lint: bootstrap
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

demo: build
	bin/robodistill demo --out $(OUT)/demo

clean:
	rm -rf bin $(OUT)
