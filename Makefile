# certmint — the two commands of the quick start are `make run` and `make test`.
GO      ?= go
BIN     ?= bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 60s

.PHONY: build run test test-deps fuzz bench bench-floor profile clean

build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

# Start the server on the embedded defaults: SQLite and the CA in
# ./certmint-data, ACME on :8443, the console on 127.0.0.1:8444.
run: build
	$(BIN)/certmint serve

# Every test: unit tests (with the race detector), the fuzz seed corpora,
# and the integration tests against real certbot, lego, Postgres and
# Chromium, installed first when running as root.
test: test-deps
	$(GO) vet ./...
	$(GO) test -count=1 -race -timeout 15m $$($(GO) list ./... | grep -v /integration)
	$(GO) test -count=1 -timeout 30m ./integration/

test-deps:
	@scripts/test-deps.sh

# Each fuzz target for FUZZTIME (default 60s).
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

# Issuance throughput and server CPU per certificate on this machine
# (SQLite; DB=postgres://... for Postgres). See BENCHMARKS.md.
bench:
	scripts/bench.sh $(or $(WORKERS),8) $(or $(DURATION),20s)

# The same bench against scripts/floor, an in-memory server doing only
# the work every flow needs: the floor of CPU per flow on this machine.
bench-floor:
	scripts/bench-floor.sh $(or $(WORKERS),8) $(or $(DURATION),20s)

# A CPU profile of the server under load, from the console's pprof.
profile:
	scripts/profile.sh $(or $(WORKERS),8) 15

clean:
	rm -rf $(BIN)
