# The README's two commands: `make demo` and `make test`. Both start from nothing:
# they create .venv, install bcai (with a pinned CPU PyTorch), then run.
#
# CUDA users: override the torch requirement, e.g.
#   make test TORCH_SPEC="torch==2.13.0" PIP_TORCH_ARGS="--index-url https://download.pytorch.org/whl/cu128"

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PIP_TORCH_ARGS ?=
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PYTEST_ARGS ?=

.PHONY: demo test test-slow test-e2e typecheck bench sysdeps clean

# System libraries the sandboxes need (libseccomp, loaded by pyseccomp through ctypes);
# installed only when missing. ldconfig lives in /sbin for most non-root PATHs; apt-get
# needs root (sudo when we are not); other distributions get a clear message instead.
sysdeps:
	@if ! { ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null; } | grep -q 'libseccomp\.so\.2'; then \
		if ! command -v apt-get >/dev/null 2>&1; then \
			echo "libseccomp (libseccomp.so.2) is missing: install it with your package manager (e.g. dnf install libseccomp)" >&2; exit 1; \
		fi; \
		SUDO=; if [ "$$(id -u)" != 0 ]; then SUDO=sudo; fi; \
		echo "installing libseccomp2 (apt-get)"; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq libseccomp2 >/dev/null \
			|| { echo "could not install libseccomp2; install it by hand (apt-get install libseccomp2)" >&2; exit 1; }; \
	fi

$(VENV)/.installed: pyproject.toml | sysdeps
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH_SPEC)" $(PIP_TORCH_ARGS)
	$(PIP) install -q -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/bcai demo

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

# Long soaks and big simulations.
test-slow: $(VENV)/.installed
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

# Only the real multi-process tests (devnets, p2p processes), slow ones included.
test-e2e: $(VENV)/.installed
	$(PY) -m pytest -m e2e $(PYTEST_ARGS)

# mypy over src/ (clean as of this commit).
typecheck: $(VENV)/.installed
	$(PY) -m mypy src

bench: $(VENV)/.installed
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .hypothesis
