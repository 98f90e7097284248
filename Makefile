# clinicnet — the two commands that matter are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo

.PHONY: help run test lint fmt build up deploy-check bench bench-quick

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

up: ## ensure PostgreSQL and NATS JetStream are running (installs them when missing)
	@bash scripts/ensure-infra.sh

build: ## build every binary
	$(CARGO) build --workspace --bins

run: up build ## start the whole network on this machine (Ctrl-C stops it)
	@bash scripts/run.sh

test: up lint build deploy-check bench-quick ## every test against real PostgreSQL and NATS, plus lint, manifest checks and a benchmark smoke run
	$(CARGO) test --workspace --no-fail-fast -- --test-threads=4

bench: up ## measure the network against raw PostgreSQL and NATS; writes bench/results/<date>.md
	$(CARGO) build --release --workspace --bins
	CLINICNET_SERVICE_PROFILE=release "$${CARGO_TARGET_DIR:-target}/release/clinicnet-bench" --out bench/results

# The binary from `make build` is run directly: `cargo run -p bench` would resolve features for
# the bench package alone and rebuild half the workspace.
bench-quick: up build ## a short benchmark run that keeps the benchmark code working (numbers not meaningful)
	"$${CARGO_TARGET_DIR:-target}/debug/clinicnet-bench" --quick --out target/bench-quick

lint: ## formatting, clippy and buf lint of the contracts
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@bash scripts/buf-lint.sh

fmt: ## format the code
	$(CARGO) fmt --all

deploy-check: build ## render every Kubernetes overlay and validate it offline
	@bash scripts/deploy-check.sh
