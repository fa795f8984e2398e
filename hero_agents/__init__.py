"""hero-agents: train tool-using LangGraph agents with HERO.

HERO is hindsight-enhanced self-distillation for multi-turn agents.
"""

from hero_agents.capture import TraceRecorder, wrap
from hero_agents.errors import HeroError
from hero_agents.storage import TrajectoryWriter, read_trajectories, write_trajectories
from hero_agents.trajectory import SCHEMA_VERSION, Diagnosis, TokenTrace, Trajectory, Turn

__all__ = [
    "SCHEMA_VERSION",
    "Diagnosis",
    "HeroError",
    "TokenTrace",
    "TraceRecorder",
    "Trajectory",
    "TrajectoryWriter",
    "Turn",
    "read_trajectories",
    "wrap",
    "write_trajectories",
]
__version__ = "0.1.0"
