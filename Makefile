# Cordon: the two commands of the README are `make lab` and `make test`.
SHELL := /bin/bash
JOBS ?= $(shell nproc)
# CI builds in a fresh clone each time: let ccache reuse objects across checkout folders.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1
FUZZ_SECONDS ?= 20

.PHONY: all setup build test test-release test-netns test-browser test-soak test-asan test-tsan test-fuzz bench fuzz clean

all: build

setup:
	scripts/setup

build: setup
	cmake --preset release
	cmake --build --preset release -j $(JOBS)

# Every test: unit tests (release and ASan+UBSan), the end-to-end tests in the lab
# topology (root, network namespaces), the concurrency tests under TSan, and each fuzz
# target for a short bounded time.
test: setup test-release test-netns test-browser test-soak test-asan test-tsan test-fuzz

test-release: build
	ctest --preset release -L unit -j $(JOBS)

# Brings the lab up and down itself (a running `make lab` is taken down).
test-netns: build
	ctest --preset release -L netns

# The console in Debian's Chromium (playwright-core) against the lab; root, like netns.
test-browser: build
	ctest --preset release -L browser

# A short soak (the long one is `make soak`).
test-soak: build
	$(MAKE) soak DURATION=90s

test-asan: setup
	cmake --preset asan-ubsan
	cmake --build --preset asan-ubsan -j $(JOBS)
	ctest --preset asan-ubsan -L unit -j $(JOBS)

test-tsan: setup
	cmake --preset tsan
	cmake --build --preset tsan -j $(JOBS) --target concurrency_tests
	ctest --preset tsan -L concurrency

test-fuzz: setup
	cmake --preset fuzz -DCORDON_FUZZ_SECONDS=$(FUZZ_SECONDS)
	cmake --build --preset fuzz -j $(JOBS)
	ctest --preset fuzz -L fuzz -j $(JOBS)
	tests/fuzz/coverage-report.sh build/fuzz $(FUZZ_REPORT)

# Long fuzzing session: FUZZ_SECONDS per target (default 10 minutes), then the coverage
# report with HTML pages per target (build/fuzz/fuzz-coverage/).
fuzz: FUZZ_SECONDS = 600
fuzz: FUZZ_REPORT = --html
fuzz: test-fuzz

bench: build
	bench/run.sh

clean:
	rm -rf build

# The lab topology (DESIGN.md section 4): namespaces, services and the dataplane inline
# (the dpdk-testpmd stand-in if cordon-dataplane is not built). Needs root.
.PHONY: lab lab-down
lab: build
	tests/topology/lab.sh up
	@tests/topology/lab.sh hints

lab-down:
	tests/topology/lab.sh down

# Soak (issue 10): steady clinical traffic, a rotating attack mix and policy applies in
# the lab for DURATION; report in build/soak-report.json. make test runs a short one.
DURATION ?= 30m
.PHONY: soak
soak: build
	/usr/bin/python3 tests/soak/soak.py --duration $(DURATION)
