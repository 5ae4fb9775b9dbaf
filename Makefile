# Two entry points: `make run` (the main job) and `make test` (the whole suite).
# Both create .venv and install into it; nothing outside the repository is touched.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# On a machine without an NVIDIA GPU, install PyTorch's CPU build: a plain `torch`
# would pull a multi-GB CUDA wheel. Override TORCH to choose another build.
ifeq ($(shell command -v nvidia-smi 2>/dev/null),)
TORCH ?= torch==2.13.0+cpu
else
TORCH ?= torch==2.13.0
endif

.PHONY: run test lint bench clean browser screenshots docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# `make run` needs the CLI and the dashboard only: no torch (calibration runs layers; the report and the
# dashboard read shipped profiles).
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[ui]"
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed-run
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[calibration,cluster,ui,test]"
	touch $@

PORT ?= 8501

run: $(VENV)/.installed-run
	$(BIN)/v3sim report
	@echo ""
	@echo "v3sim dashboard: http://127.0.0.1:$(PORT)   (Ctrl-C stops it)"
	$(BIN)/streamlit run dashboard/app.py --server.address 127.0.0.1 --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false

# The browser test drives Debian's chromium: installed here when missing and run as root (as in CI);
# elsewhere the test is skipped and says how to enable it.
browser:
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser test"; \
		apt-get install -y -qq chromium >/dev/null 2>&1 || \
		{ apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; } || \
		echo "could not install chromium: the browser test will be skipped"; \
	fi

test: $(VENV)/.installed-test browser
	$(BIN)/ruff check .
	$(BIN)/mypy hwmodels workloads simulator calibration dashboard
	$(BIN)/python -m pytest -q

screenshots: $(VENV)/.installed-test browser
	V3SIM_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/dashboard/test_browser.py

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/mypy hwmodels workloads simulator calibration dashboard
	$(BIN)/ruff format --check .

# The validation tables of README.md and docs/validation.md, from `v3sim validate` (a test checks them).
docs: $(VENV)/.installed-run
	$(BIN)/python docs/refresh.py

bench: $(VENV)/.installed-test
	$(BIN)/python -m benchmarks.bench_goals --write README.md
	$(BIN)/python benchmarks/bench_workloads.py
	$(BIN)/python -m benchmarks.bench_network --write docs/speed.md
	$(BIN)/python -m benchmarks.bench_training --write docs/speed.md
	$(BIN)/python -m benchmarks.bench_costs --write docs/speed.md
	$(BIN)/python benchmarks/bench_calibration.py
	$(BIN)/python benchmarks/bench_events.py
	$(BIN)/python benchmarks/bench_serving.py
	$(BIN)/python benchmarks/bench_sweep.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build *.egg-info
