# Two commands do all the set-up: `make run` (install on first use + the main job) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# mypy's cache outside the clone: it checks file hashes, so a fresh clone reuses it (4 s, not 90 s)
export MYPY_CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mlops-nocode/mypy

.PHONY: run test lint bench install clean ui
UI_STAMP := src/mlops_nocode/web/dist/index.html
UI_SRC   := $(shell find frontend/src -type f 2>/dev/null) frontend/index.html frontend/vite.config.ts frontend/tsconfig.json

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# the no-code UI, built once (again when its sources change); npm's cache stays in ~/.npm
$(UI_STAMP): frontend/package.json frontend/package-lock.json $(UI_SRC)
	@command -v npm >/dev/null || { echo "building the UI needs npm (Node >= 20): apt-get install nodejs npm" >&2; exit 1; }
	cd frontend && npm ci --no-audit --no-fund --prefer-offline && npm run build

ui: $(UI_STAMP)

install: $(STAMP) $(UI_STAMP)

run: $(STAMP) $(UI_STAMP)
	$(BIN)/mlops run pipeline/iris-classifier

test: $(STAMP) $(UI_STAMP)
	bash scripts/ensure-postgres.sh
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q -n 3 --dist loadfile  # three processes on two cores: the tests mostly wait on the real servers and steps they start; a file's tests in order on one

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache frontend/node_modules src/mlops_nocode/web/dist
