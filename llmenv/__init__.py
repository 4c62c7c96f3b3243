"""Scripts run by the embedded engine's own virtualenv (.venv-llm: vLLM for CPU, its torch, transformers, gguf), as
`python llmenv/<script>.py ...`: never imported by the backend. The engine supervisor (agent/llm/engine.py) finds
them beside the agent package."""
