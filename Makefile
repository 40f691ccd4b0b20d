# SPDX-License-Identifier: MIT
#
# Wrapper around CMake so that a fresh machine needs one command:
#   make demo                 build and run the demo
#   make check [SAN=address|thread|undefined]   build and run the tests
#   make check DEBUG=OFF      the same without internal assertions (release code paths)
#   make stress [SAN=...] [FAULT_INJECT=1] [STRESS_SECONDS=N]   the stress test (label stress)
#   make check FAULT_INJECT=1 the tests with fault-injection sites compiled in
#   make bench                optimised build, benchmarks -> build/bench.json
#   make install PREFIX=DIR   libraries, headers, hmmu.pc and the hmmu command
# Each build flavour has its own directory: build, build-address, build-nodebug, ...

SAN ?=
FAULT_INJECT ?=
STRESS_SECONDS ?=
PREFIX ?= /usr/local
DEBUG ?= ON
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD := build$(if $(SAN),-$(SAN))$(if $(filter OFF,$(DEBUG)),-nodebug)$(if $(FAULT_INJECT),-fi)
BENCH_BUILD := build-bench
CMAKE_FLAGS := -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHMMU_DEBUG=$(DEBUG) $(if $(SAN),-DHMMU_SANITIZE=$(SAN)) \
	       -DHMMU_FAULT_INJECT=$(if $(FAULT_INJECT),ON,OFF)
# ThreadSanitizer cannot map its shadow memory under high ASLR entropy:
# run its tests with address-space randomisation off.
RUN := $(if $(filter thread,$(SAN)),setarch $(shell uname -m) -R)

.PHONY: all deps build check stress demo bench install clean

all: build

deps:
	@./scripts/install-deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# The stress tests (label stress) take minutes: `make stress` runs them alone.
check: build
	cd $(BUILD) && $(RUN) ctest --output-on-failure -j $(JOBS) -LE stress

stress: build
	cd $(BUILD) && $(if $(STRESS_SECONDS),HMMU_STRESS_SECONDS=$(STRESS_SECONDS)) $(RUN) ctest --output-on-failure -L stress

demo: build
	./$(BUILD)/tools/hmmu demo

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

bench: deps
	cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DHMMU_DEBUG=OFF
	cmake --build $(BENCH_BUILD) -j $(JOBS) --target hmmu_tool
	mkdir -p build
	./$(BENCH_BUILD)/tools/hmmu bench --json build/bench.json

clean:
	rm -rf build build-* 
