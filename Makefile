# The two README commands (`make train`, `make test`) work on a fresh machine with only
# Python 3.11, pip and gcc: each creates .venv and installs the project into it first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED_ARCHIVE := ../shared/data/cifar-10-jpeg.tar.gz

# Data for `make train`: $(DATA), else $$CIFAR_ENGINE_DATA, else the offline archive beside
# the checkout, else what `cifar-engine data download` fetches into data/.
DATA ?= $(or $(CIFAR_ENGINE_DATA),$(wildcard $(SHARED_ARCHIVE)))

.PHONY: train test test-slow test-portable test-matrix test-data install data docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	touch $(STAMP)

install: $(STAMP)

data: $(STAMP)
ifeq ($(strip $(DATA)),)
	$(BIN)/cifar-engine data download --dest data
endif

# The main job: the tuned 2-layer network of the classic course (about 52% test accuracy).
TRAIN_ARGS ?= --preset two-layer-tuned

train: data
	$(BIN)/cifar-engine train $(TRAIN_ARGS) $(if $(strip $(DATA)),--data $(DATA))

# The real-data tests read Fashion-MNIST from Debian's dataset-fashion-mnist: installed here
# when missing and this user may install packages (root, or sudo without a password).
FASHION_MNIST := /usr/share/datasets/fashion-mnist
APT_GET := $(if $(filter 0,$(shell id -u)),apt-get,sudo -n apt-get)

test-data:
	@if [ ! -d $(FASHION_MNIST) ]; then \
		echo "make: installing Debian's dataset-fashion-mnist for the real-data tests"; \
		( DEBIAN_FRONTEND=noninteractive $(APT_GET) update -qq && \
		  DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq dataset-fashion-mnist ) \
		  >/dev/null 2>&1 || echo "make: could not install dataset-fashion-mnist (run: sudo apt-get install dataset-fashion-mnist); its tests will fail"; \
	fi

# Debian's Chromium for the browser tests (tests/browser.py), and npm for the packages that
# asv_bench/offline_assets.py fetches: installed the same way when missing.
# $(call apt_install,PACKAGE,COMMAND)
apt_install = @command -v $(2) >/dev/null || { echo "make: installing Debian's $(1)"; \
	( DEBIAN_FRONTEND=noninteractive $(APT_GET) update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq $(1) ) >/dev/null 2>&1 || \
	  echo "make: could not install $(1) (run: sudo apt-get install $(1)); what needs it will fail"; }

.PHONY: test-browser npm-client
test-browser: npm-client
	$(call apt_install,chromium,chromium)

npm-client:
	$(call apt_install,npm,npm)

# The suite runs on every core (pytest-xdist), a test file to a worker: most of its time is
# Numba compiling and small single-threaded checks, which share the cores well.
PARALLEL := -n auto --dist loadfile

test: $(STAMP) test-data
	$(BIN)/python -m pytest -m "not slow" -q $(PARALLEL)

test-slow: $(STAMP) test-data test-browser
	$(BIN)/python -m pytest -m slow -q

# The suite as on a system without fcntl and os.pread (Windows): tests/no_posix/ hides them
# in every Python process of the run.
test-portable: $(STAMP) test-data
	CIFAR_ENGINE_TEST_NO_POSIX=1 $(BIN)/python -m pytest -m "not slow" -q $(PARALLEL)

# The tests whose outcome depends on the BLAS, under each library and each OpenBLAS kernel
# choice: as the machine sets OPENBLAS_CORETYPE, unset, and forced to Haswell's kernels.
BLAS_TESTS := tests/kernels tests/runtime/test_blas_libraries.py tests/model/test_network.py tests/data/test_preprocessing.py \
	tests/test_estimator.py tests/training/test_run.py tests/cli/test_search_kill.py
CORETYPES := "" "-u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE" "OPENBLAS_CORETYPE=Haswell OPENBLAS_L2_SIZE=512"

test-matrix: $(STAMP) test-data
	@for blas in openblas mkl; do for core in $(CORETYPES); do \
		echo "== CIFAR_ENGINE_BLAS=$$blas $$core"; \
		env $$core CIFAR_ENGINE_BLAS=$$blas $(BIN)/python -m pytest -m "not slow" -q $(PARALLEL) $(BLAS_TESTS) || exit 1; \
	done; done

# The settings reference, docs/settings.md, generated from the settings table
# (engine/settings.py); tests/test_docs.py fails when it is stale.
docs: $(STAMP)
	$(BIN)/python -m cifar_engine.cli.settings_reference docs/settings.md

clean:
	rm -rf $(VENV) data/cache .pytest_cache

# -- speed (asv and the side-by-side comparison) ----------------------------------------------
ASV := cd asv_bench && ../$(BIN)/asv
HISTORY ?= 10
TORCH_VERSION ?= 2.13.0

.PHONY: bench bench-history bench-preview compare

# The machine's description carries the BLAS the engine chose on it (auto: measured).
BLAS_DESCRIPTION = $(BIN)/python -c "from cifar_engine.runtime import blas; from cifar_engine.util.system import cpu_model; \
	d = blas.describe(); print(f'{cpu_model()} | engine BLAS {d[\"library\"]} {d[\"version\"]} (installed: {\", \".join(d[\"installed\"])})')"

asv_bench/.machine: $(STAMP)
	$(ASV) machine --yes
	$(ASV) machine --yes --machine "$$(hostname)" --cpu "$$(cd .. && $(BLAS_DESCRIPTION))"
	touch $@

bench: asv_bench/.machine
	$(ASV) run --python=same --show-stderr --set-commit-hash=$$(git rev-parse HEAD) $(BENCH_ARGS)

bench-history: asv_bench/.machine npm-client
	@# asv exits 2 when a benchmark fails on some commit (an older engine API): still publish
	$(ASV) run --show-stderr --skip-existing-successful HEAD~$(HISTORY)..HEAD $(BENCH_ARGS) || \
		echo "bench-history: some benchmarks failed on some commits (see above)"
	$(ASV) publish
	@# asv's page loads its scripts from CDNs: copy them in, so it works offline too
	$(BIN)/python asv_bench/offline_assets.py asv_bench/html
	@echo "dashboard: asv_bench/html/index.html (serve it with: cd asv_bench && ../$(BIN)/asv preview)"

bench-preview: $(STAMP)
	$(ASV) preview

compare: $(STAMP)
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)" -e ".[compare]"
	$(BIN)/python asv_bench/compare.py --json asv_bench/compare.json $(COMPARE_ARGS)
