"""``webshop-lite``: WebShop's pages, actions and reward over a small generated catalog, offline.

Not WebShop: its scores are not WebShop scores. The catalog and the instructions are generated
by `webshop_catalog` (90 products, 180 instructions, 120 train / 60 test); the pages, the
actions and the reward follow WebShop (Yao et al. 2022, arXiv 2207.01206):

- pages: search page → results (10 a page, up to 50 results) → product page (options, price,
  Description / Features sub-pages) → "Buy Now" → done page, rendered as WebShop's ``simple``
  text observation (the page's visible texts joined by ``[SEP]``); "Back to Search",
  "< Prev" and "Next >" move as on WebShop;
- search: BM25 (Lucene's defaults in pyserini, k1 = 0.9, b = 0.4) over what WebShop indexes for
  each product: title, description, first bullet point and options, lower-cased words (no
  stemming);
- reward: `webshop_reward.purchase_reward` for the product bought with the options chosen, when
  "Buy Now" is clicked; 0 for an episode that buys nothing. Products have no reviews, so
  product pages have no Reviews button.

An episode is one instruction on a fresh session. Its score is the purchase's reward, with the
components in ``Score.info``; the termination does not change it (WebShop rewards the purchase).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall
from langchain_core.tools import BaseTool

from hero_agents.adapters.envs.webshop_actions import (
    BUY_BUTTON,
    SEP,
    SYSTEM_PROMPT,
    Action,
    InvalidAction,
    clickable_list,
    webshop_tools,
)
from hero_agents.adapters.envs.webshop_catalog import Catalog, Goal, Product, generate_catalog
from hero_agents.adapters.envs.webshop_reward import PurchaseReward, purchase_reward
from hero_agents.environment import Demonstrations, ReferenceSolution, Score
from hero_agents.errors import ConfigError, EnvError
from hero_agents.messages import to_openai_messages

NAME = "webshop-lite"

SEARCH_RESULTS = 50
"""Results a search returns (WebShop's ``SEARCH_RETURN_N``)."""
PAGE_SIZE = 10
"""Results per page (WebShop's ``PRODUCT_WINDOW``)."""

BACK_TO_SEARCH = "Back to Search"
PREV_PAGE = "< Prev"
NEXT_PAGE = "Next >"
SUB_PAGES = ("Description", "Features")

_BM25_K1 = 0.9
_BM25_B = 0.4

Page = Literal["search", "results", "item", "sub", "done"]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


class SearchIndex:
    """BM25 over the catalog's products, indexed as WebShop indexes them."""

    def __init__(self, products: Sequence[Product]) -> None:
        self._products = list(products)
        self._docs = [Counter(_words(self.document(p))) for p in self._products]
        self._lengths = [sum(doc.values()) for doc in self._docs]
        self._mean_length = sum(self._lengths) / len(self._lengths)
        frequency: Counter[str] = Counter()
        for doc in self._docs:
            frequency.update(doc.keys())
        count = len(self._docs)
        self._idf = {w: math.log(1 + (count - n + 0.5) / (n + 0.5)) for w, n in frequency.items()}

    @staticmethod
    def document(product: Product) -> str:
        """The indexed text: title, description, first bullet point and options."""
        options = ", and ".join(f"{name}: {', '.join(v)}" for name, v in product.options.items())
        return " ".join([product.title, product.description, product.bullet_points[0], options])

    def search(self, query: str, k: int = SEARCH_RESULTS) -> list[Product]:
        """The `k` best-scoring products with any query word, best first (ties: catalog order)."""
        words = _words(query)
        scored = []
        for position, (doc, length) in enumerate(zip(self._docs, self._lengths, strict=True)):
            norm = _BM25_K1 * (1 - _BM25_B + _BM25_B * length / self._mean_length)
            score = sum(
                self._idf[w] * doc[w] * (_BM25_K1 + 1) / (doc[w] + norm) for w in words if w in doc
            )
            if score > 0:
                scored.append((-score, position))
        return [self._products[position] for _, position in sorted(scored)[:k]]


@dataclass(frozen=True)
class Purchase:
    """What an episode bought, and WebShop's reward for it."""

    asin: str
    options: dict[str, str]
    reward: PurchaseReward


@dataclass
class WebShopLiteSession:
    """One shopper's browser session: the current page and WebShop's navigation state."""

    goal: Goal
    catalog: Catalog
    index: SearchIndex
    page: Page = "search"
    keywords: str = ""
    results: list[Product] = field(default_factory=list)
    page_number: int = 1
    asin: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    sub_page: str | None = None
    purchase: Purchase | None = None

    # -- what the page shows -------------------------------------------------------------

    def observation(self) -> str:
        """The page as WebShop's simple text observation."""
        instruction = ["Instruction:", self.goal.instruction]
        if self.page == "search":
            parts = ["WebShop", *instruction, "Search"]
        elif self.page == "results":
            shown = self._shown()
            parts = [*instruction, BACK_TO_SEARCH]
            parts.append(f"Page {self.page_number} (Total results: {len(self.results)})")
            parts += [PREV_PAGE, NEXT_PAGE] if self.page_number > 1 else [NEXT_PAGE]
            for product in shown:
                parts += [product.asin, product.title, f"${product.price:.2f}"]
        elif self.page == "item":
            product = self._product()
            parts = [*instruction, BACK_TO_SEARCH, PREV_PAGE]
            for name, values in product.options.items():
                parts += [name, *values]
            parts += [product.title, f"Price: ${product.price:.2f}", "Rating: N.A."]
            parts += [*SUB_PAGES, BUY_BUTTON]
        elif self.page == "sub":
            product = self._product()
            parts = [*instruction, BACK_TO_SEARCH, PREV_PAGE]
            if self.sub_page == "Description":
                parts.append(product.description)
            else:
                parts += list(product.bullet_points)
        else:
            assert self.purchase is not None
            parts = [
                "Thank you for shopping with us!",
                "Your score (min 0.0, max 1.0)",
                f"{self.purchase.reward.reward}",
            ]
        return SEP.join(parts)

    def clickables(self) -> list[str]:
        """What a click may name on this page, as the page writes it."""
        if self.page == "results":
            turn = [PREV_PAGE, NEXT_PAGE] if self.page_number > 1 else [NEXT_PAGE]
            return [BACK_TO_SEARCH, *turn, *(p.asin for p in self._shown())]
        if self.page == "item":
            values = [v for vs in self._product().options.values() for v in vs]
            return [BACK_TO_SEARCH, PREV_PAGE, *values, *SUB_PAGES, BUY_BUTTON]
        if self.page == "sub":
            return [BACK_TO_SEARCH, PREV_PAGE]
        return []

    # -- actions -------------------------------------------------------------------------

    def act(self, action: Action, argument: str) -> str:
        """Apply ``search[argument]`` or ``click[argument]``; return the next page's text."""
        if self.purchase is not None:
            raise InvalidAction(
                "The purchase is done and the episode is over: reply without calling a tool."
            )
        if action == "search":
            if self.page != "search":
                raise InvalidAction(
                    f"search is only available on the search page; click[{BACK_TO_SEARCH}] first."
                )
            if not argument.strip():
                raise InvalidAction("search needs a query.")
            self.keywords = argument.strip().lower()
            self.results = self.index.search(self.keywords)
            self.page, self.page_number = "results", 1
            return self.observation()
        return self._click(argument)

    def _click(self, argument: str) -> str:
        wanted = argument.strip().lower()
        target = next((c for c in self.clickables() if c.lower() == wanted), None)
        if target is None:
            raise InvalidAction(
                f"click[{argument}] is not on this page; it offers: "
                f"{clickable_list(self.clickables())}."
            )
        if target == BACK_TO_SEARCH:
            self.page, self.asin, self.options = "search", None, {}
        elif target == NEXT_PAGE:
            self.page_number += 1
        elif target == PREV_PAGE and self.page == "results":
            self.page_number -= 1
        elif target == PREV_PAGE and self.page == "item":
            self.page, self.asin, self.options = "results", None, {}
        elif target == PREV_PAGE:
            self.page = "item"
        elif self.page == "results":
            self.page, self.asin, self.options = "item", target, {}
        elif target in SUB_PAGES:
            self.page, self.sub_page = "sub", target
        elif target == BUY_BUTTON:
            product = self._product()
            reward = purchase_reward(product, self.options, self.goal)
            self.purchase = Purchase(product.asin, dict(self.options), reward)
            self.page = "done"
        else:
            name = next(n for n, vs in self._product().options.items() if target in vs)
            self.options[name] = target
        return self.observation()

    def _shown(self) -> list[Product]:
        start = (self.page_number - 1) * PAGE_SIZE
        return self.results[start : start + PAGE_SIZE]

    def _product(self) -> Product:
        assert self.asin is not None
        return self.catalog.products[self.asin]


class WebShopLiteEpisode:
    """One instruction on a fresh session, with the search and click tools."""

    def __init__(self, session: WebShopLiteSession) -> None:
        self.session = session
        self.task_id: str = session.goal.goal_id
        self.system_prompt: str = SYSTEM_PROMPT
        self.initial_messages: list[BaseMessage] = [HumanMessage(session.observation())]
        self.tools: list[BaseTool] = webshop_tools(session.act)

    def score(self, messages: Sequence[BaseMessage], *, termination: str) -> Score:
        """WebShop's reward for this episode's purchase (0 without one)."""
        goal, purchase = self.session.goal, self.session.purchase
        info: dict[str, object] = {
            "env": NAME,
            "benchmark_note": "generated catalog and instructions; not WebShop's data or scores",
            "termination": termination,
            "goal": {
                "asin": goal.asin,
                "attributes": list(goal.attributes),
                "options": dict(goal.options),
                "price_upper": goal.price_upper,
            },
            "purchased": None,
        }
        if purchase is None:
            return Score(reward=0.0, info=info)
        info["purchased"] = {"asin": purchase.asin, "options": purchase.options}
        info.update(purchase.reward.as_info())
        return Score(reward=purchase.reward.reward, info=info)


class WebShopLiteEnvironment:
    """``webshop-lite``: the generated catalog's instructions, train and test splits."""

    def __init__(self, catalog: Catalog | None = None) -> None:
        self.name = NAME
        self.catalog = catalog or generate_catalog()
        self.index = SearchIndex(list(self.catalog.products.values()))

    def task_ids(self, split: str = "all") -> list[str]:
        """Goal ids of a split (``"train"``, ``"test"`` or ``"all"``), in a fixed order."""
        if split not in self.catalog.splits:
            raise ConfigError(
                f"unknown split {split!r} for {self.name}; valid: {sorted(self.catalog.splits)}"
            )
        return list(self.catalog.splits[split])

    def new_episode(self, task_id: str) -> WebShopLiteEpisode:
        """A fresh session on the search page of the instruction `task_id`."""
        return WebShopLiteEpisode(self._session(task_id))

    def gold_actions(self, task_id: str) -> list[ToolCall]:
        """A shortest correct action sequence: search, page to the target, pick every goal
        option, buy (its reward is 1)."""
        session = self._session(task_id)
        goal = session.goal
        calls: list[ToolCall] = []

        def do(action: Action, argument: str) -> None:
            key = "query" if action == "search" else "button"
            calls.append(ToolCall(name=action, args={key: argument}, id=f"gold_{len(calls)}"))
            session.act(action, argument)

        do("search", f"{' '.join(goal.attributes)} {goal.query}")
        while goal.asin not in session.clickables():
            if session.page_number * PAGE_SIZE >= len(session.results):
                raise EnvError(f"{task_id}: the gold search does not find {goal.asin}")
            do("click", NEXT_PAGE)
        do("click", goal.asin)
        for value in goal.options.values():
            do("click", value)
        do("click", BUY_BUTTON)
        assert session.purchase is not None and session.purchase.reward.reward == 1.0
        return calls

    def gold_messages(self, task_id: str) -> list[AIMessage]:
        """The gold actions as the agent's replies, one call per turn, then a closing reply."""
        replies = [AIMessage("", tool_calls=[call]) for call in self.gold_actions(task_id)]
        return [*replies, AIMessage("I bought the product.")]

    def solution_turns(self, task_id: str) -> int:
        """Turns of the shortest correct episode: the gold actions, then the closing reply."""
        return len(self.gold_actions(task_id)) + 1

    def demonstrations(self, task_ids: Sequence[str]) -> Demonstrations:
        """The gold messages of `task_ids` played through the agent graph and scored."""
        from hero_agents.demonstrations import record_demonstrations

        return record_demonstrations(self, {t: self.gold_messages(t) for t in task_ids})

    def reference_solution(self, task_id: str) -> ReferenceSolution:
        """The gold messages, whose option clicks (right after the product's) may come in any
        order."""
        replies = self.gold_messages(task_id)
        goal = self.goal(task_id)
        product = [m.tool_calls[0]["args"] for m in replies[:-1]].index({"button": goal.asin})
        options = frozenset(range(product + 1, product + 1 + len(goal.options)))
        return ReferenceSolution(
            tuple(to_openai_messages(replies)), any_order=(options,) if len(options) > 1 else ()
        )

    def goal(self, task_id: str) -> Goal:
        """The instruction behind a task id."""
        try:
            return self.catalog.goal(task_id)
        except KeyError:
            raise ConfigError(
                f"unknown task {task_id!r} for {self.name}; see task_ids() "
                f"({len(self.catalog.goals)} tasks)"
            ) from None

    def _session(self, task_id: str) -> WebShopLiteSession:
        return WebShopLiteSession(goal=self.goal(task_id), catalog=self.catalog, index=self.index)

    def __repr__(self) -> str:
        return f"WebShopLiteEnvironment(tasks={len(self.catalog.goals)})"
