# Everyday commands. Every target runs in the locked environment (uv sync --locked --extra test).
.PHONY: install lint format typecheck test test-e2e test-team test-slow bench deps deps-check lock pipeline repro plots-template

RUN := uv run --locked --extra test

install:             ## the locked environment with the test tools
	uv sync --locked --extra test

lint:                ## ruff's rules and formatting, checked
	$(RUN) ruff check src tests benchmarks tools team
	$(RUN) ruff format --check src tests benchmarks tools team

format:              ## apply ruff's fixes and formatting
	$(RUN) ruff check --fix src tests benchmarks tools team
	$(RUN) ruff format src tests benchmarks tools team

typecheck:           ## mypy over the package (config in pyproject.toml)
	$(RUN) mypy

test:                ## the default suite (about 5 minutes on 2 cores)
	$(RUN) pytest

test-e2e:            ## the shared study: one full dvc repro and the tests that read or change it (~15 min)
	$(RUN) pytest -m "e2e and not slow"

test-team:           ## the team stack end to end (PostgreSQL, S3, MLflow server)
	$(RUN) pytest -m team

test-slow:           ## the long runs (largest backbones, a queued sweep)
	$(RUN) pytest -m slow

bench:               ## benchmarks: numbers printed and written to benchmarks/latest.json
	$(RUN) python benchmarks/run.py

deps:                ## rewrite each dvc.yaml stage's module deps from the import graph
	$(RUN) python tools/stage_deps.py

deps-check:          ## fail when dvc.yaml's module deps differ from the import graph
	$(RUN) python tools/stage_deps.py --check

lock:                ## refresh uv.lock after changing dependencies in pyproject.toml
	uv lock

pipeline:            ## write params.yaml's datasets into dvc.yaml
	$(RUN) fer-age pipeline

repro: pipeline      ## the whole pipeline
	$(RUN) dvc repro

plots-template:      ## rebuild .dvc/plots/offline.html (vega libraries inside the page: dvc plots show offline)
	$(RUN) python tools/offline_plots.py
