"""The baselines' feedback behind the Reflector interface: env-feedback and demo."""

from __future__ import annotations

from reflection_server import make_trajectory

from hero_agents.reflection import DemoReflector, EnvFeedbackReflector
from hero_agents.reflection.baselines import NO_OBSERVATION
from hero_agents.trajectory import Trajectory


def test_env_feedback_hint_is_the_raw_next_observation() -> None:
    trajectory = make_trajectory("t", turns=3, error_turns=[1])
    [result] = EnvFeedbackReflector().reflect([trajectory])

    assert result.ok and result.usage.calls == 0
    first, second, last = result.diagnoses
    assert first.hint == '[get_order] {"order_id": "#W0"}'
    assert (first.validity, first.necessity, first.cause) == ("valid", "necessary", None)
    assert second.hint == "[get_order error] Error: order not found"
    assert (second.validity, second.cause) == ("invalid", "Error: order not found")
    assert last.hint == NO_OBSERVATION
    assert {d.reflector for d in result.diagnoses} == {"env-feedback"}


def test_env_feedback_is_truncated() -> None:
    trajectory = make_trajectory("t", turns=2, observation_text="x" * 5000)
    [result] = EnvFeedbackReflector(max_chars=100).reflect([trajectory])
    assert result.diagnoses[0].hint.startswith("[get_order] xxx")
    assert result.diagnoses[0].hint.endswith("more characters]")
    assert len(result.diagnoses[0].hint) < 140


def test_demo_is_a_successful_trajectory_of_the_same_task_at_every_turn() -> None:
    failed = make_trajectory("failed", task_id="A", turns=3, reward=0.0)
    success = make_trajectory("success", task_id="A", turns=2, reward=1.0)
    other_task = make_trajectory("other", task_id="B", turns=2, reward=1.0)
    reflector = DemoReflector([failed, success, other_task])

    [result] = reflector.reflect([failed])
    assert result.ok
    hints = {d.hint for d in result.diagnoses}
    assert len(hints) == 1
    [hint] = hints
    assert hint.startswith("A successful attempt at this task (reward 1.0):")
    assert 'called get_order({"order_id": "#W0"})' in hint
    assert "\n2. Your order is cancelled." in hint
    assert reflector.demo_for(failed) is success


def test_no_demo_is_reported_not_invented() -> None:
    only_success = make_trajectory("s", task_id="A", turns=2, reward=1.0)
    lonely = make_trajectory("lonely", task_id="C", turns=2, reward=0.0)
    reflector = DemoReflector([only_success, lonely])

    results = {r.trajectory.id: r for r in reflector.reflect([only_success, lonely])}
    # a success is not its own demo (SDPO's dont_reprompt_on_self_success)
    assert not results["s"].ok and "other than itself" in results["s"].error
    assert not results["lonely"].ok and "'C'" in results["lonely"].error
    assert results["lonely"].trajectory.diagnoses is None

    [with_self] = DemoReflector([only_success], exclude_self=False).reflect([only_success])
    assert with_self.ok


def test_baseline_validity_is_what_the_trace_proves(mock_episode: Trajectory) -> None:
    # tau2 accepted update_task_status(status="done"), but its schema allows only
    # "pending" or "completed": the baseline's label says invalid, its hint is still raw.
    [result] = EnvFeedbackReflector().reflect([mock_episode])
    enum_turn = result.diagnoses[4]
    assert mock_episode.turns[4].tool_errors == 0
    assert (enum_turn.validity, enum_turn.necessity) == ("invalid", "necessary")
    assert enum_turn.cause.startswith("update_task_status: 'status' must be one of")
    assert enum_turn.hint.startswith("[update_task_status] {")
    repeat = result.diagnoses[6]  # necessity is not judged by a baseline
    assert (repeat.validity, repeat.necessity, repeat.cause) == ("valid", "necessary", None)
