"""hero-agents: train tool-using LangGraph agents with HERO (hindsight-enhanced self-distillation)."""

from hero_agents.errors import HeroError
from hero_agents.trajectory import SCHEMA_VERSION, Diagnosis, TokenTrace, Trajectory, Turn

__all__ = ["SCHEMA_VERSION", "Diagnosis", "HeroError", "TokenTrace", "Trajectory", "Turn"]
__version__ = "0.1.0"
