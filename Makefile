# certmint — the quick start is `make run`, `make test` and `make demo`.
GO      ?= go
BIN     ?= bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 60s

.PHONY: build run demo test test-deps docs fuzz bench bench-floor bench-inventory bench-backup profile clean

build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

# Start the server on the embedded defaults: SQLite and the CA in
# ./certmint-data, ACME on :8443, the console on 127.0.0.1:8444.
# ARGS="--flag value ..." passes flags to certmint serve.
run: build
	$(BIN)/certmint serve $(ARGS)

# The mutual-TLS scenario on one machine, end to end, then exit: certmint,
# two agents on 2-minute certificates, mtls-demo's receiver and sender on
# their files; each certificate renews twice (about 75 s), exit 0 or 1.
# DEMO_ARGS="-profile 3m -renewals 3 -keep" changes it (see scripts/demo).
demo: build
	$(GO) run ./scripts/demo -bin $(BIN) $(DEMO_ARGS)

# Every test: unit tests (with the race detector), the fuzz seed corpora,
# and the integration tests against real certbot, lego, Postgres and
# Chromium, installed first when running as root.
test: test-deps
	$(GO) vet ./...
	$(GO) test -count=1 -race -timeout 15m $$($(GO) list ./... | grep -v /integration)
	$(GO) test -count=1 -timeout 30m ./integration/

test-deps:
	@scripts/test-deps.sh

# docs/configuration.md from the flag definitions (TestConfigurationReference
# fails while the two disagree).
docs:
	$(GO) run ./cmd/certmint config-reference --out docs/configuration.md

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

# The fleet inventory page with 100,000 certificates in 30,000 lineages
# (SQLite), five runs of each case. See BENCHMARKS.md.
bench-inventory:
	go test -run '^$$' -bench BenchmarkInventory -benchtime 20x -count 5 ./web/

# certmint backup, backup verify and restore of 1,000,000 certificates on
# SQLite and on Postgres (a throwaway cluster): wall and CPU time and peak
# RSS per run, also at 100,000 to show memory does not grow with the
# table. About 40 minutes and 15 GB of temporary disk. See BENCHMARKS.md.
# N=, SMALL=, RUNS= and ENGINES=sqlite|postgres change it.
bench-backup: build
	$(GO) run ./scripts/benchbackup -bin $(BIN)/certmint -n $(or $(N),1000000) -small $(or $(SMALL),100000) \
		-runs $(or $(RUNS),3) $(if $(ENGINES),-engines $(ENGINES))

# A CPU profile of the server under load, from the console's pprof.
profile:
	scripts/profile.sh $(or $(WORKERS),8) 15

clean:
	rm -rf $(BIN)
