# bitnet-kde — every target does its own set-up (scripts/setup.sh is idempotent and fast when done).
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
BKD := $(BUILD_DIR)/bin/bitnet-kde
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release
# OpenMP threads sleep at barriers instead of spinning (read once at load time, so set here): on a
# small shared machine spinning threads steal the cores the work needs.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: setup build test ensure_dirs prepare teacher collect train eval dryrun pipeline experiment bench clean

setup:
	@bash scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	@bash scripts/setup.sh --test-tools
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# Stage targets run the pipeline up to that stage (the order lives in one place: src/core/stages/pipeline.cc),
# skipping what is current.
ensure_dirs: build
	@$(BKD) pipeline --until ensure-dirs

prepare teacher collect train eval: build
	@$(BKD) pipeline --until $@

# The 7B dry-run needs no other stage.
dryrun: build
	@$(BKD) dryrun

# Every stage in order on the offline default, skipping current outputs, then the M0-M4 exit criteria.
pipeline: build
	@$(BKD) pipeline

# The controlled experiment (docs/EXPERIMENT.md): the stages up to collect, then every arm x seed.
experiment: build
	@$(BKD) pipeline --until collect
	@$(BKD) experiment

bench: build
	@bash scripts/bench.sh

clean:
	rm -rf $(BUILD_DIR)
