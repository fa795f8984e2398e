"""``python -m hero_agents``: the ``hero`` command line."""

from hero_agents.cli import app

app()
