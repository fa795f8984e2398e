"""``webshop:URL``: the real WebShop, driven over HTTP through its own web app.

For users who run WebShop (github.com/princeton-nlp/WebShop: ``./setup.sh -d all``, then
``./run_dev.sh``, which serves ``web_agent_site.app`` on port 3000). An episode is a browser
session of that app, and every action is what a browser would do on its pages:

- ``search[query]``: submit the search form (``POST /<session>`` with ``search_query``);
- ``click[button]``: submit the form of a button (Back to Search, < Prev, Next >, Description,
  Features, Reviews, Buy Now), follow a product link (its ASIN), or choose an option (its radio
  input's ``data-url``); names are matched case-insensitively, as WebShop lower-cases them.

Observations are WebShop's ``simple`` text mode: the page's visible texts joined by ``[SEP]``
(elements the page hides, such as the done page's goal details, are left out). The reward is the
app's own: the score on the page that "Buy Now" leads to (its ``get_reward``); 0 for an episode
that buys nothing.

Task ids are ``fixed_N``, the app's N-th instruction (sessions whose id contains ``fixed`` get
goal N; goals are shuffled with WebShop's fixed seed). Splits follow WebShop's baselines: test =
goals 0-499, train = goals 1500 and up (500-1499 are its validation goals, in ``all`` only).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx
from bs4 import BeautifulSoup, Comment, Tag
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.tools import BaseTool

from hero_agents.adapters.envs.webshop_actions import (
    SEP,
    SYSTEM_PROMPT,
    Action,
    InvalidAction,
    clickable_list,
    webshop_tools,
)
from hero_agents.environment import Score
from hero_agents.errors import ConfigError, EnvError

SPEC_PREFIX = "webshop:"
"""Environment names of a WebShop server start with this, e.g. ``webshop:http://127.0.0.1:3000``."""

HUMAN_GOALS = 12087
"""Instructions of WebShop's full data set (its default, human-written goals)."""

TEST_GOALS = range(0, 500)
TRAIN_START = 1500

_HIDDEN_TAGS = {"style", "script", "head", "title", "meta", "[document]"}


@dataclass(frozen=True)
class Clickable:
    """How to activate one element: the request a browser would send."""

    method: str
    url: str


@dataclass(frozen=True)
class WebShopPage:
    """One page of the WebShop app, read the way WebShop's text environment reads it."""

    url: str
    text: str
    search_url: str | None
    """Where the search form posts to, when the page has one."""
    clickables: dict[str, Clickable]
    """Lower-cased names of buttons, product links and option values → their request."""
    reward: float | None
    """The score on the done page."""

    @classmethod
    def parse(cls, html: str, url: str) -> WebShopPage:
        """Read a page's visible text, search form, clickable elements and score."""
        soup = BeautifulSoup(html, "html.parser")
        for hidden in soup.select('[hidden], [style*="display:none"], [style*="display: none"]'):
            hidden.decompose()
        texts = [
            t.strip()
            for t in soup.find_all(string=True)
            if t.parent is not None
            and t.parent.name not in _HIDDEN_TAGS
            and not isinstance(t, Comment)
            and t.strip()
        ]
        clickables: dict[str, Clickable] = {}
        search_url = None
        for button in soup.find_all("button"):
            form = button.find_parent("form")
            if not isinstance(form, Tag):
                continue
            action = urljoin(url, str(form.get("action", "")))
            target = Clickable(str(form.get("method", "get")).upper(), action)
            if form.find(id="search_input") is not None:
                search_url = target.url
                continue  # WebShop does not click[search]: the search action submits this form
            clickables[button.get_text(strip=True).lower()] = target
        for link in soup.select("a.product-link"):
            href = urljoin(url, str(link.get("href", "")))
            clickables[link.get_text(strip=True).lower()] = Clickable("GET", href)
        for option in soup.select('input[type="radio"]'):
            data_url = urljoin(url, str(option.get("data-url", "")))
            clickables[str(option.get("value", "")).lower()] = Clickable("GET", data_url)
        reward = None
        score = soup.select_one("#reward pre")
        if score is not None:
            try:
                reward = float(score.get_text(strip=True))
            except ValueError:
                raise EnvError(f"{url}: unreadable score {score.get_text()!r}") from None
        return cls(url, SEP.join(texts), search_url, clickables, reward)


class WebShopSiteEpisode:
    """One WebShop instruction in a fresh session of the app."""

    def __init__(self, client: httpx.Client, base_url: str, task_id: str) -> None:
        self.task_id = task_id
        self._client = client
        # The app gives a session whose id contains 'fixed' the goal numbered after its last '_'.
        session = f"hero-{uuid.uuid4().hex[:12]}-{task_id}"
        self._page = self._request("GET", f"{base_url}/{session}")
        self.system_prompt: str = SYSTEM_PROMPT
        self.initial_messages: list[BaseMessage] = [HumanMessage(self._page.text)]
        self.tools: list[BaseTool] = webshop_tools(self.act)
        self.reward: float | None = None

    def act(self, action: Action, argument: str) -> str:
        """Apply ``search[argument]`` or ``click[argument]`` on the current page."""
        if self.reward is not None:
            raise InvalidAction(
                "The purchase is done and the episode is over: reply without calling a tool."
            )
        page = self._page
        if action == "search":
            if page.search_url is None:
                raise InvalidAction(
                    "search is only available on the search page; click[Back to Search] first."
                )
            if not argument.strip():
                raise InvalidAction("search needs a query.")
            self._page = self._request("POST", page.search_url, {"search_query": argument})
        else:
            target = page.clickables.get(argument.strip().lower())
            if target is None:
                raise InvalidAction(
                    f"click[{argument}] is not on this page; it offers: "
                    f"{clickable_list(list(page.clickables))}."
                )
            self._page = self._request(target.method, target.url)
            self.reward = self._page.reward
        return self._page.text

    def _request(self, method: str, url: str, form: dict[str, str] | None = None) -> WebShopPage:
        try:
            response = self._client.request(method, url, data=form)
        except httpx.HTTPError as error:
            raise EnvError(f"WebShop at {url} could not be reached: {error}") from error
        if response.status_code != 200:
            raise EnvError(
                f"WebShop answered {method} {urlsplit(url).path} with HTTP "
                f"{response.status_code}: {response.text[:200]!r}"
            )
        return WebShopPage.parse(response.text, str(response.url))

    def score(self, messages: Sequence[BaseMessage], *, termination: str) -> Score:
        """The app's reward for this episode's purchase (0 without one)."""
        info = {"env": "webshop", "termination": termination, "purchased": self.reward is not None}
        return Score(reward=self.reward or 0.0, info=info)


class WebShopSiteEnvironment:
    """WebShop's instructions, played on a running WebShop app at `url`."""

    def __init__(self, url: str, *, goals: int = HUMAN_GOALS, timeout_s: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"{url!r} is not an http(s) URL; write webshop:http://HOST:PORT (the app's root)"
            )
        self.url = url.rstrip("/")
        self.name = f"{SPEC_PREFIX}{self.url}"
        self.goals = goals
        self._client = httpx.Client(follow_redirects=True, timeout=timeout_s)

    def task_ids(self, split: str = "all") -> list[str]:
        """``fixed_N`` ids of a split (WebShop's: test 0-499, train 1500 and up)."""
        ranges = {
            "test": TEST_GOALS,
            "train": range(TRAIN_START, self.goals),
            "all": range(self.goals),
        }
        if split not in ranges:
            raise ConfigError(f"unknown split {split!r} for {self.name}; valid: {list(ranges)}")
        return [f"fixed_{n}" for n in ranges[split]]

    def new_episode(self, task_id: str) -> WebShopSiteEpisode:
        """A new session of the app with goal `task_id` on its search page."""
        match = re.fullmatch(r"fixed_(\d+)", task_id)
        if match is None or int(match.group(1)) >= self.goals:
            raise ConfigError(
                f"unknown task {task_id!r} for {self.name}: expected fixed_N, N < {self.goals}"
            )
        return WebShopSiteEpisode(self._client, self.url, task_id)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def __repr__(self) -> str:
        return f"WebShopSiteEnvironment({self.url!r})"
