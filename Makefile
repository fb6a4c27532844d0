# Two commands matter: `make run` (the dashboard, with a demo registry when REGISTRY_URL is unset)
# and `make test`. Both build the virtualenv first.
PYTHON ?= $(shell command -v python3.13 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBIAN_PACKAGES := docker-registry apache2-utils chromium redis-server docker.io docker-compose mmdebstrap busybox-static

.PHONY: run test test-quick test-postgres lint format bench bench-index bench-cleanup bench-load bench-metrics bench-api bench-image system-packages postgres-packages

$(BIN)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 12))' || \
		{ echo "Python 3.12+ is needed (3.13 recommended); set PYTHON=/path/to/python3.13"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

run: $(BIN)/.installed
	$(BIN)/python manage.py rundashboard

# Every test, on one worker per core (pytest-xdist); the Docker Engine's tests share one worker.
PYTEST_PARALLEL := -n auto --dist loadgroup

test: $(BIN)/.installed system-packages
	$(BIN)/pytest $(PYTEST_PARALLEL)

# The tests that need no outside process (no registry, Docker Engine, Chromium, Redis or PostgreSQL): seconds.
test-quick: $(BIN)/.installed
	$(BIN)/pytest -m "not real"

# The same suite on a throwaway PostgreSQL (a temporary cluster on a free port, removed afterwards).
test-postgres: $(BIN)/.installed system-packages postgres-packages
	bash bin/with-postgres $(BIN)/pytest $(PYTEST_PARALLEL)

# The suite runs against a real registry, a real Chromium, a real Redis and a real Docker Engine from Debian's packages;
# mmdebstrap and a static BusyBox make the base images the container image is built from (bin/stand-in-images);
# docker-compose starts compose.yaml and compose.scale.yaml (tests/test_compose.py).
system-packages:
	@command -v docker-registry >/dev/null && command -v chromium >/dev/null && command -v redis-server >/dev/null && \
		command -v mmdebstrap >/dev/null && command -v docker-compose >/dev/null && test -x /bin/busybox && \
		{ command -v dockerd || test -x /usr/sbin/dockerd; } >/dev/null || \
		{ $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(DEBIAN_PACKAGES); }

postgres-packages:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
		{ $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql; }

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(BIN)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(BIN)/.installed
	$(BIN)/python bench/repository_page.py

bench-index: $(BIN)/.installed
	$(BIN)/python bench/index.py

bench-cleanup: $(BIN)/.installed
	$(BIN)/python bench/cleanup.py

bench-metrics: $(BIN)/.installed
	$(BIN)/python bench/metrics.py

bench-api: $(BIN)/.installed
	$(BIN)/python bench/api.py

bench-load: $(BIN)/.installed
	$(BIN)/python bench/load.py

bench-image: $(BIN)/.installed
	$(BIN)/python bench/image.py --build
