# tl_app: every target installs what it needs first (a fresh machine needs only python3 and make).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
TL := $(VENV)/bin/tl-app
STAMP := $(VENV)/.tl_app-installed
ASSETS_STAMP := $(VENV)/.tl_app-assets
recipe ?=
args ?=

.DEFAULT_GOAL := default
TF_SERVING_IMAGE ?= tensorflow/serving:latest
.PHONY: default help install assets run test bench bench-quick tensorboard serve serve-docker bench-tflite bench-bases

default:  ## `make recipe=NAME [args="..."]` runs that recipe; a bare `make` prints help
ifneq ($(strip $(recipe)),)
	@$(MAKE) --no-print-directory train recipe=$(recipe) args='$(args)'
else
	@$(MAKE) --no-print-directory help
endif

help:  ## this list
	@echo "tl_app make targets (VENV=$(VENV)):"
	@echo "  make run                      train the embedded default recipe (digits) and export it"
	@echo "  make recipe=NAME args=\"...\"   tl-app run NAME ARGS (e.g. recipe=fashion_mnist args=\"--data-dir DIR\")"
	@echo "  make test                     install, prepare offline assets, run the test suite"
	@echo "  make install                  create $(VENV) and install tl_app with its test extra"
	@echo "  make assets                   prepare offline pretrained weights (tl-app assets)"
	@echo "  make bench                    every benchmark -> benchmarks/results.md (full sizes, ~1 h)"
	@echo "  make bench-quick              the same table at small sizes (goal 15 min; 10 measured on AMX, 14.5 on AVX2)"
	@echo "  make bench-tflite             TFLite modes vs the float SavedModel (trains 3 models; long)"
	@echo "  make bench-bases              every offline image base on Fashion-MNIST PNGs (trains 8 models; long)"
	@echo "  make tensorboard              TensorBoard on runs/ at http://127.0.0.1:6006"
	@echo "  make serve                    tl-app serve saved_models/ (TF Serving's REST on 127.0.0.1:8501, gRPC on 8500)"
	@echo "  make serve-docker             the real TF Serving (docker, \$$TF_SERVING_IMAGE) on saved_models/ with models.config"

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $@

install: $(STAMP)  ## venv + editable install with the test extra

$(ASSETS_STAMP): $(STAMP)
	$(TL) assets
	@touch $@

assets: $(ASSETS_STAMP)  ## offline pretrained weights

run: $(STAMP)  ## the main job on the embedded default recipe
	$(TL) run digits $(args)

train: $(STAMP)
	$(TL) run $(recipe) $(args)

test: $(ASSETS_STAMP)  ## the test suite; pytest's "no tests ran" (exit 5) is a failure
	@$(PY) -m pytest $(args); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

bench: $(ASSETS_STAMP)  ## every benchmark, full sizes -> benchmarks/results.json and results.md (about an hour)
	$(PY) -m pip install --quiet -e ".[test,bench]"
	$(PY) benchmarks/table.py $(args)

bench-quick: $(ASSETS_STAMP)  ## the same table at small sizes (goal <= 15 min on 2 cores; 592 s measured on a quiet AMX host, 872 s on an AVX2 one)
	$(PY) -m pip install --quiet -e ".[test,bench]"
	$(PY) benchmarks/table.py --quick $(args)

bench-tflite: $(ASSETS_STAMP)  ## every TFLite mode of image_folder (Fashion-MNIST PNGs), digits and MiniLM text
	$(PY) -m pip install --quiet -e ".[test,bench]"
	$(PY) benchmarks/tflite.py $(args)

bench-bases: $(ASSETS_STAMP)  ## the offline image bases side by side on the Fashion-MNIST PNGs (docs/backbones.md)
	$(PY) -m pip install --quiet -e ".[test,bench]"
	$(PY) benchmarks/bases.py $(args)

tensorboard: $(STAMP)  ## TensorBoard on runs/ (127.0.0.1 only; args="--port 6007" for another port)
	$(TL) tensorboard --logdir runs --host 127.0.0.1 --port 6006 $(args)

serve: $(STAMP)  ## tl-app serve on saved_models/ (args="--host 0.0.0.0 ..." passes options)
	$(TL) serve saved_models $(args)

# The real TF Serving in its container (docs/serving.md); it needs a Docker engine, which not every machine has.
serve-docker: $(STAMP)  ## tensorflow/serving on saved_models/ with models.config and deploy/batching_parameters.txt
	@command -v docker >/dev/null 2>&1 || { echo "make serve-docker: there is no docker command on this machine; install Docker, or serve with \`make serve\` (tl-app serve speaks the same APIs)."; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "make serve-docker: docker is installed but no Docker engine answers here (\`docker info\` fails); start the daemon or use a machine with one, or serve with \`make serve\`."; exit 1; }
	$(TL) models-config saved_models --base-path /models
	docker run --rm -p 8500:8500 -p 8501:8501 \
	  --mount type=bind,source=$(CURDIR)/saved_models,target=/models \
	  --mount type=bind,source=$(CURDIR)/deploy/batching_parameters.txt,target=/config/batching_parameters.txt,readonly \
	  -t $(TF_SERVING_IMAGE) \
	  --model_config_file=/models/models.config --model_config_file_poll_wait_seconds=60 \
	  --enable_batching --batching_parameters_file=/config/batching_parameters.txt
