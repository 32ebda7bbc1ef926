# bitnet-kde — every target does its own set-up (scripts/setup.sh is idempotent and fast when done).
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
BKD := $(BUILD_DIR)/bin/bitnet-kde
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

.PHONY: setup build test ensure_dirs prepare teacher collect train eval dryrun pipeline bench clean

setup:
	@bash scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	@bash scripts/setup.sh --test-tools
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

ensure_dirs: build
	@$(BKD) ensure-dirs

prepare: ensure_dirs
	@$(BKD) prepare

# The offline default teaches with a local model: pretrain it first (a no-op once it is trained).
teacher: prepare
	@if [ "$$($(BKD) config --get TEACHER_PROVIDER)" = local ]; then \
	  $(BKD) train --role teacher; fi
	@$(BKD) teacher

collect: teacher
	@$(BKD) collect

train: collect
	@$(BKD) train

eval: train
	@$(BKD) eval

dryrun: build
	@$(BKD) dryrun

# Every stage that exists, in order, on the offline default (eval joins when it lands).
pipeline: train dryrun
	@echo "pipeline: done (ensure_dirs prepare teacher collect train dryrun)"

bench: build
	@bash scripts/bench.sh

clean:
	rm -rf $(BUILD_DIR)
