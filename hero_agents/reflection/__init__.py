"""Hindsight reflection: one diagnosis per turn, from an LLM or from the baselines' feedback."""
