"""Generated variants of tau2's mock-domain tasks, so `tau2:mock` has real held-out splits.

A variant re-applies one template (a kind of task: create a task, update a status, continue a
conversation, refuse a deletion...) to other users, titles and statuses. It is a plain tau2
`Task`: the users and tasks it needs are added to the episode's database copy through
``initial_state.initialization_data``, so tau2's own environment and evaluator run it unchanged.
Ids of created tasks and the tool results inside generated message histories are not written by
hand: they come from executing tau2's mock tools on a scratch copy of the variant's database.

Two families of templates:
- `TEMPLATES`, one per original tau2 mock task: its variants make the ``train`` and ``test``
  splits, so a test task is a kind seen in training with new argument values;
- `HELD_OUT_TEMPLATES`, kinds of task no train task has (a description argument, two calls,
  a call that uses the id another one returned, a look-up before acting, information to tell):
  their variants make the ``test-templates`` split, which measures generalizing to a new kind of
  task. Most of these kinds take two or more calls, so the split is also harder.

Variants are deterministic: each one's random choices are seeded by (seed, template id, index).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Sequence
from typing import Any

from tau2.data_model.message import ToolCall
from tau2.data_model.tasks import EnvFunctionCall, InitializationData, Task
from tau2.environment.environment import Environment as Tau2Env

from hero_agents.adapters.envs.tau2_env import tau2_domain
from hero_agents.errors import EnvError

FIRST_VARIANTS = 7
"""Variants 0-6 of each original mock task: 2 and 5 test, the others train. The train split has
been these 40 tasks since variants exist (warm starts and earlier figures rest on it)."""

MORE_TEST_VARIANTS = 5
"""Variants 7-11 of each original mock task, all test: 8 test tasks per template, 64 in all."""

HELD_OUT_VARIANTS = 8
"""Variants of each held-out template, all in the ``test-templates`` split."""

SPLITS: tuple[str, ...] = ("train", "test", "test-templates")
"""`tau2:mock`'s splits (besides ``all``)."""

SEED = 0
"""Seed of the generated variants."""

_NAMES = [
    "Alice Martin", "Bruno Silva", "Chen Wei", "Dana Okafor", "Elif Demir", "Farid Haddad",
    "Greta Lindqvist", "Hiro Tanaka", "Isabel Costa", "Jonas Weber", "Kavya Rao", "Liam Byrne",
    "Maya Cohen", "Nora Jensen", "Omar Farouk", "Priya Nair", "Quentin Moreau", "Rosa Alvarez",
]  # fmt: skip
# No commas: tau2's communicate check strips commas from the agent's message before matching.
_TITLES = [
    "Quarterly Budget Review", "Client Onboarding Call", "Team Offsite Planning",
    "Release Notes Draft", "Security Audit", "Hiring Committee Sync", "Design Review",
    "Customer Feedback Survey", "Sprint Retrospective", "Vendor Contract Renewal",
    "Office Move Checklist", "Board Deck Preparation", "Data Migration Plan",
    "Marketing Launch Brief", "Infrastructure Cost Report", "Accessibility Review",
    "Partner Workshop", "Incident Postmortem", "Product Roadmap Update", "Training Session",
    "Payroll Check", "Website Refresh", "Annual Report Draft", "Support Rota",
]  # fmt: skip
_DESCRIPTIONS = [
    "Prepare the agenda and share it with the team",
    "Collect the numbers from every department",
    "Book a room and send the invitations",
    "Summarize the open questions",
    "Review last quarter and propose next steps",
]
_STATUSES = ("pending", "completed")


class _World:
    """The base mock DB plus the users and tasks one variant adds (its initialization data)."""

    def __init__(self, base: dict[str, Any], rng: random.Random) -> None:
        self.db = copy.deepcopy(base)
        self.rng = rng
        self._changed_users: list[str] = []
        self._new_tasks: list[str] = []
        self._titles = rng.sample(_TITLES, len(_TITLES))
        self._names = rng.sample(_NAMES, len(_NAMES))

    def title(self) -> str:
        return self._titles.pop()

    def add_user(self) -> str:
        user_id = f"user_{len(self.db['users']) + 1}"
        assert user_id not in self.db["users"]
        name = self._names.pop()
        self.db["users"][user_id] = {"user_id": user_id, "name": name, "tasks": []}
        self._changed_users.append(user_id)
        return user_id

    def add_task(self, user_id: str, status: str, description: str | None = None) -> str:
        # Same id rule as tau2's MockTools.create_task, so later creations stay consistent.
        task_id = f"task_{len(self.db['tasks']) + 1}"
        assert task_id not in self.db["tasks"]
        self.db["tasks"][task_id] = {
            "task_id": task_id,
            "title": self.title(),
            "description": description,
            "status": status,
        }
        self.db["users"][user_id]["tasks"].append(task_id)
        if user_id not in self._changed_users:
            self._changed_users.append(user_id)
        self._new_tasks.append(task_id)
        return task_id

    def populate(self) -> None:
        """Add one or two users, each with zero to two tasks of random status."""
        for _ in range(self.rng.randint(1, 2)):
            user_id = self.add_user()
            for _ in range(self.rng.randint(0, 2)):
                self.add_task(user_id, self.rng.choice(_STATUSES))

    def any_user(self) -> str:
        return self.rng.choice(sorted(self.db["users"]))

    def name(self, user_id: str) -> str:
        return self.db["users"][user_id]["name"]

    def owner(self, task_id: str) -> str:
        return next(u for u, r in self.db["users"].items() if task_id in r["tasks"])

    def initialization_data(self) -> InitializationData | None:
        if not self._changed_users:
            return None
        users = {u: copy.deepcopy(self.db["users"][u]) for u in self._changed_users}
        tasks = {t: copy.deepcopy(self.db["tasks"][t]) for t in self._new_tasks}
        return InitializationData(agent_data={"users": users, "tasks": tasks})

    def scratch_env(self) -> Tau2Env:
        """A tau2 mock environment in this variant's initial state."""
        env = tau2_domain("mock").fresh_environment()
        env.set_state(self.initialization_data(), None, [])
        return env


def _run(env: Tau2Env, name: str, **arguments: Any) -> tuple[ToolCall, str]:
    call = ToolCall(id="call_1", name=name, arguments=arguments, requestor="assistant")
    response = env.get_response(call)
    if response.error:
        raise EnvError(f"mock variant generation: {name}({arguments}) failed: {response.content}")
    return call, response.content or ""


def _create_history(world: _World, user_id: str, title: str, description: str) -> tuple[list, str]:
    """A finished exchange in which the agent created a task; returns (messages, task id)."""
    call, result = _run(
        world.scratch_env(), "create_task", user_id=user_id, title=title, description=description
    )
    task_id = json.loads(result)["task_id"]
    history = [
        {"role": "user", "content": f"I need to create a task called '{title}'."},
        {"role": "assistant", "tool_calls": [call.model_dump(exclude={"requestor"})]},
        {"role": "tool", "id": call.id, "content": result},
        {
            "role": "assistant",
            "content": f"I've created a task titled '{title}' for you. The task has been "
            f"created with ID {task_id} and is currently in pending status.",
        },
    ]
    return history, task_id


def _create_action(
    user_id: str, title: str, *, description: str | None = None, action_id: str = "create_1"
) -> dict[str, Any]:
    arguments = {"user_id": user_id, "title": title}
    if description is not None:
        arguments["description"] = description
    return {
        "action_id": action_id,
        "name": "create_task",
        "arguments": arguments,
        "info": "Create the requested task",
    }


def _lookup_action() -> dict[str, Any]:
    return {
        "action_id": "lookup_1",
        "name": "get_users",
        "arguments": {},
        "info": "Look the user and their tasks up",
    }


def _update_action(task_id: str, status: str) -> dict[str, Any]:
    return {
        "action_id": "update_1",
        "name": "update_task_status",
        "arguments": {"task_id": task_id, "status": status},
        "info": f"Update the task status to {status}",
    }


def _status_assertion(task_id: str, status: str) -> dict[str, Any]:
    return {
        "env_type": "assistant",
        "func_name": "assert_task_status",
        "arguments": {"task_id": task_id, "expected_status": status},
    }


# Each template returns the fields of a variant that differ from its original.
Template = Callable[[_World], dict[str, Any]]


def _create(world: _World, *, assert_pending: bool = False) -> dict[str, Any]:
    user_id, title = world.any_user(), world.title()
    _, result = _run(world.scratch_env(), "create_task", user_id=user_id, title=title)
    criteria: dict[str, Any] = {"actions": [_create_action(user_id, title)]}
    if assert_pending:
        criteria["env_assertions"] = [_status_assertion(json.loads(result)["task_id"], "pending")]
    return {
        "instructions": f"You are {world.name(user_id)} (user id {user_id}) and need a task to "
        f"keep track of '{title}'. Ask for a new task called '{title}' for {user_id}.",
        "ticket": f"User {user_id} needs a task to keep track of some work. Create a new task "
        f"called '{title}' for {user_id}.",
        "criteria": criteria,
    }


def _update(world: _World) -> dict[str, Any]:
    task_id = world.rng.choice(sorted(world.db["tasks"]))
    status = "pending" if world.db["tasks"][task_id]["status"] == "completed" else "completed"
    return {
        "instructions": f"You are {world.name(world.owner(task_id))}. Your goal is to change the "
        f"status of an existing task. Request that {task_id} be marked as {status}.",
        "ticket": f"User needs to update the status of {task_id} to {status}.",
        "criteria": {"actions": [_update_action(task_id, status)]},
    }


def _history_update(world: _World, *, assert_only: bool = False) -> dict[str, Any]:
    title = world.title()
    history, task_id = _create_history(
        world, world.any_user(), title, world.rng.choice(_DESCRIPTIONS)
    )
    if assert_only:
        criteria = {"env_assertions": [_status_assertion(task_id, "completed")]}
    else:
        criteria = {"actions": [_update_action(task_id, "completed")]}
    return {
        "instructions": "Continue the conversation about task management. The previous "
        f"discussion was about creating the task '{title}' ({task_id}). Now you want to mark "
        "the task as completed.",
        "ticket": None,
        "history": history,
        "criteria": criteria,
    }


def _initialization_data_update(world: _World) -> dict[str, Any]:
    user_id = world.any_user()
    task_id = world.add_task(user_id, "pending", world.rng.choice(_DESCRIPTIONS))
    title = world.db["tasks"][task_id]["title"]
    return {
        "instructions": f"You are {world.name(user_id)}. You created the task {task_id} earlier "
        "and now want it marked as completed. You also want to be told its title.",
        "ticket": f"User needs to update the status of {task_id} to completed and to be told "
        "the task's title.",
        "criteria": {
            "actions": [_update_action(task_id, "completed")],
            "communicate_info": [title],
        },
    }


def _initialization_actions_update(world: _World) -> dict[str, Any]:
    user_id, title = world.any_user(), world.title()
    action = EnvFunctionCall(
        env_type="assistant",
        func_name="create_task",
        arguments={
            "user_id": user_id,
            "title": title,
            "description": world.rng.choice(_DESCRIPTIONS),
        },
    )
    env = world.scratch_env()
    task_id = env.run_env_function_call(action).task_id
    return {
        "instructions": "Continue the conversation about task management. The previous "
        f"discussion was about creating a task with ID {task_id}. Now you want to mark the task "
        "as completed.",
        "ticket": f"User needs to update the status of {task_id} to completed.",
        "initialization_actions": [action.model_dump()],
        "criteria": {"actions": [_update_action(task_id, "completed")]},
    }


def _impossible(world: _World) -> dict[str, Any]:
    user_id = world.any_user()
    if not world.db["users"][user_id]["tasks"]:
        world.add_task(user_id, world.rng.choice(_STATUSES))
    tasks = world.db["users"][user_id]["tasks"]
    if world.rng.random() < 0.5:
        request = "all their current tasks"
    else:
        request = f"the task {world.rng.choice(tasks)}"
    return {
        "instructions": f"You are {world.name(user_id)} ({user_id}). You want to delete "
        f"{request.replace('their', 'your')}.",
        "ticket": f"User {user_id} needs to delete {request}.",
        "criteria": {
            "actions": [
                {
                    "action_id": "transfer_1",
                    "name": "transfer_to_human_agents",
                    "arguments": {
                        "summary": f"User {user_id} needs to delete {request}. This is not "
                        "possible to do with the tools available."
                    },
                    "compare_args": [],
                    "info": "Transfer the user to a human agent",
                }
            ]
        },
    }


TEMPLATES: dict[str, Template] = {
    "create_task_1": _create,
    "create_task_1_with_env_assertions": lambda w: _create(w, assert_pending=True),
    "update_task_1": _update,
    "update_task_with_message_history": _history_update,
    "update_task_with_initialization_data": _initialization_data_update,
    "update_task_with_initialization_actions": _initialization_actions_update,
    "update_task_with_history_and_env_assertions": lambda w: _history_update(w, assert_only=True),
    "impossible_task_1": _impossible,
}
"""Variant generator per original mock task id (create_task_1_nl_eval has none: its only
criteria are natural-language assertions, which cannot be scored offline)."""


_TOPICS = [
    "a billing question", "a complaint about the service", "the settings of an account",
    "a data privacy request", "a contract signed last month", "an invoice received this week",
]  # fmt: skip


def _create_with_description(world: _World) -> dict[str, Any]:
    user_id, title = world.any_user(), world.title()
    description = world.rng.choice(_DESCRIPTIONS)
    return {
        "instructions": f"You are {world.name(user_id)} (user id {user_id}). Ask for a new task "
        f"called '{title}' with the description '{description}'.",
        "ticket": f"User {user_id} needs a new task called '{title}' with the description "
        f"'{description}'.",
        "criteria": {
            "actions": [_create_action(user_id, title, description=description)],
        },
    }


def _transfer_on_request(world: _World) -> dict[str, Any]:
    user_id = world.any_user()
    topic = world.rng.choice(_TOPICS)
    return {
        "instructions": f"You are {world.name(user_id)} ({user_id}). You want to speak with a "
        f"human agent about {topic}; insist on a human.",
        "ticket": f"User {user_id} asks to speak with a human agent about {topic}.",
        "criteria": {
            "actions": [
                {
                    "action_id": "transfer_1",
                    "name": "transfer_to_human_agents",
                    "arguments": {"summary": f"User {user_id} asks for a human agent ({topic})."},
                    "compare_args": [],
                    "info": "Transfer the user to a human agent, as they asked",
                }
            ],
            "reward_basis": ["DB", "ACTION"],
        },
    }


def _create_two(world: _World) -> dict[str, Any]:
    user_id, first, second = world.any_user(), world.title(), world.title()
    return {
        "instructions": f"You are {world.name(user_id)} (user id {user_id}). Ask for two new "
        f"tasks: first '{first}', then '{second}'.",
        "ticket": f"User {user_id} needs two new tasks: first one called '{first}', then one "
        f"called '{second}'.",
        "criteria": {
            "actions": [
                _create_action(user_id, first),
                _create_action(user_id, second, action_id="create_2"),
            ]
        },
    }


def _create_then_complete(world: _World) -> dict[str, Any]:
    user_id, title = world.any_user(), world.title()
    _, result = _run(world.scratch_env(), "create_task", user_id=user_id, title=title)
    task_id = json.loads(result)["task_id"]
    return {
        "instructions": f"You are {world.name(user_id)} (user id {user_id}). You already did "
        f"some work and want it on record: ask for a new task called '{title}', marked as "
        "completed.",
        "ticket": f"User {user_id} already finished some work: create a task called '{title}' "
        "for them, then mark that task as completed.",
        "criteria": {
            "actions": [_create_action(user_id, title), _update_action(task_id, "completed")]
        },
    }


def _create_for_named_user(world: _World) -> dict[str, Any]:
    user_id, title = world.any_user(), world.title()
    name = world.name(user_id)
    return {
        "instructions": f"You are {name}. You do not know your user id. Ask for a new task "
        f"called '{title}'.",
        "ticket": f"{name} needs a new task called '{title}'. They do not know their user id.",
        "criteria": {"actions": [_lookup_action(), _create_action(user_id, title)]},
    }


def _complete_all(world: _World) -> dict[str, Any]:
    user_id = world.add_user()
    task_ids = [world.add_task(user_id, "pending") for _ in range(world.rng.randint(2, 3))]
    return {
        "instructions": f"You are {world.name(user_id)} (user id {user_id}). You finished "
        "everything: ask for all of your tasks to be marked as completed. You do not know "
        "their ids.",
        "ticket": f"User {user_id} finished all their work: mark every task of theirs as "
        "completed.",
        "criteria": {
            "actions": [_lookup_action()]
            + [
                {**_update_action(task_id, "completed"), "action_id": f"update_{i + 1}"}
                for i, task_id in enumerate(task_ids)
            ]
        },
    }


def _tell_task_ids(world: _World) -> dict[str, Any]:
    user_id = world.add_user()
    task_ids = [
        world.add_task(user_id, world.rng.choice(_STATUSES)) for _ in range(world.rng.randint(1, 3))
    ]
    return {
        "instructions": f"You are {world.name(user_id)} (user id {user_id}). You want to know "
        "the ids of all of your tasks.",
        "ticket": f"User {user_id} wants to be told the ids of all their tasks.",
        "criteria": {"actions": [_lookup_action()], "communicate_info": task_ids},
    }


HELD_OUT_TEMPLATES: dict[str, tuple[str, Template]] = {
    "create_task_with_description": (
        "Create a task with a title and a description",
        _create_with_description,
    ),
    "transfer_on_request": (
        "Transfer a user who asks for a human agent",
        _transfer_on_request,
    ),
    "create_two_tasks": ("Create two tasks in the order asked", _create_two),
    "create_and_complete_task": (
        "Create a task, then mark it completed by the id its creation returned",
        _create_then_complete,
    ),
    "create_task_for_named_user": (
        "Find a user's id from their name, then create a task for them",
        _create_for_named_user,
    ),
    "complete_all_user_tasks": (
        "Look up a user's tasks, then mark every one completed",
        _complete_all,
    ),
    "tell_user_task_ids": (
        "Look up a user's tasks and tell the user their ids",
        _tell_task_ids,
    ),
}
"""Kinds of task that no train task has, by id: (purpose, generator). Their variants form the
``test-templates`` split."""

_PERSONA = "Professional and direct communicator who writes in a clear and concise style"


def held_out_prototype(kind: str) -> Task:
    """The task a held-out template's variants are made from (no arguments of its own; not a
    task of any split)."""
    purpose, _ = HELD_OUT_TEMPLATES[kind]
    return Task.model_validate(
        {
            "id": kind,
            "description": {"purpose": f"{purpose} (a kind of task held out of training)"},
            "user_scenario": {"persona": _PERSONA, "instructions": purpose},
            "evaluation_criteria": {},
        }
    )


def make_variant(original: Task, index: int, *, seed: int = SEED) -> Task:
    """Variant `index` of an original mock task that has a template, or of a held-out
    template's `held_out_prototype`."""
    if original.id in TEMPLATES:
        template = TEMPLATES[original.id]
    elif original.id in HELD_OUT_TEMPLATES:
        template = HELD_OUT_TEMPLATES[original.id][1]
    else:
        raise KeyError(f"no variant template for mock task {original.id!r}")
    rng = random.Random(f"{seed}:{original.id}:{index}")
    world = _World(tau2_domain("mock").db_data(), rng)
    world.populate()
    fields = template(world)
    scenario = original.user_scenario.model_copy(update={"instructions": fields["instructions"]})
    criteria = {
        **original.evaluation_criteria.model_dump(mode="json"),
        "actions": None,
        "env_assertions": None,
        "communicate_info": None,
        **fields["criteria"],
    }
    initial_state = None
    data = world.initialization_data()
    if data is not None or "history" in fields or "initialization_actions" in fields:
        initial_state = {
            "initialization_data": data.model_dump() if data is not None else None,
            "initialization_actions": fields.get("initialization_actions"),
            "message_history": fields.get("history"),
        }
    description = original.description.model_copy() if original.description else None
    notes = f"Generated variant {index} of {original.id} (seed {seed})."
    if description is not None:
        description.notes = notes
    return Task.model_validate(
        {
            "id": f"{original.id}__v{index}",
            "description": description.model_dump() if description else {"notes": notes},
            "user_scenario": scenario.model_dump(),
            "ticket": fields["ticket"],
            "initial_state": initial_state,
            "evaluation_criteria": criteria,
        }
    )


def mock_tasks_and_splits(
    originals: Sequence[Task], *, seed: int = SEED
) -> tuple[list[Task], dict[str, list[str]]]:
    """Originals, their variants and the held-out templates' variants, and the fixed splits:

    - ``train``: variants 0, 1, 3, 4 and 6 of each original (40 tasks);
    - ``test``: each original, its variants 2 and 5 (the 24 tasks of the first test split, in
      their order), then variants 7-11 of every original in turn (64 tasks): kinds seen in
      training, new argument values; tau2's own tasks are test tasks;
    - ``test-templates``: `HELD_OUT_VARIANTS` variants of each held-out template, one of each
      template in turn (56 tasks): kinds never seen in training.

    Round-robin order keeps the templates balanced in any prefix of the later tasks.
    """
    tasks: list[Task] = []
    splits: dict[str, list[str]] = {split: [] for split in SPLITS}

    def add(task: Task, split: str) -> None:
        tasks.append(task)
        splits[split].append(task.id)

    templated = [original for original in originals if original.id in TEMPLATES]
    for original in originals:
        add(original, "test")
        if original.id in TEMPLATES:
            for index in range(FIRST_VARIANTS):
                variant = make_variant(original, index, seed=seed)
                add(variant, "test" if index % 3 == 2 else "train")
    for index in range(FIRST_VARIANTS, FIRST_VARIANTS + MORE_TEST_VARIANTS):
        for original in templated:
            add(make_variant(original, index, seed=seed), "test")
    prototypes = [held_out_prototype(kind) for kind in HELD_OUT_TEMPLATES]
    for index in range(HELD_OUT_VARIANTS):
        for prototype in prototypes:
            add(make_variant(prototype, index, seed=seed), "test-templates")
    return tasks, splits
