"""Reflector clients that talk to models: OpenAI-compatible chat APIs."""
