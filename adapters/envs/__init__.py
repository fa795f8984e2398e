"""Environments: tau2-bench domains and friends, behind `hero_agents.environment`."""
