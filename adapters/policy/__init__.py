"""Policy backends: chat models the agent calls (in-process transformers, vLLM server)."""
