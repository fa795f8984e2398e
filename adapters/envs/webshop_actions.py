"""WebShop's action space as the agent's tools, and the prompt that explains it.

WebShop's text environment takes two actions, ``search[query]`` and ``click[button]``, and
answers with the text of the next page, its elements joined by ``" [SEP] "``. Here they are two
LangChain tools, ``search(query)`` and ``click(button)``, whose result is that page text. An
action the page does not offer (a search away from the search page, a click on something the
page does not show, any action after the purchase) is a tool error naming what the page offers,
where WebShop would silently leave the page unchanged.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Literal

from langchain_core.tools import BaseTool, StructuredTool, ToolException

SEP = " [SEP] "
"""WebShop's separator between the text elements of a page (its ``simple`` observation mode)."""

BUY_BUTTON = "Buy Now"
"""The button that buys the product shown, with the options chosen, and ends the episode."""

SYSTEM_PROMPT = """\
You are a shopping agent on WebShop, a web store. You are given an instruction that describes \
a product to buy. Every observation is the text of the current web page, its elements \
separated by [SEP].

Act with the tools:
- search(query): search the store; only on the search page (after "Back to Search" if needed).
- click(button): click a button, a product id, or an option value shown on the current page \
(e.g. "Next >", "< Prev", "Back to Search", "B0XXXXXXXX", "Description", "Features", a color \
or size).

Find the product that best matches the instruction (its attributes, its options and its \
price), choose each option the instruction asks for by clicking it on the product page, then \
click "Buy Now". The purchase ends the episode: after it, reply without calling a tool."""
"""The agent's system prompt for WebShop environments."""

Action = Literal["search", "click"]


class InvalidAction(ToolException):
    """An action the current page does not offer; the message says what it offers."""


def webshop_tools(act: Callable[[Action, str], str]) -> list[BaseTool]:
    """The ``search`` and ``click`` tools of one episode, both calling ``act(action, argument)``,
    which returns the next page's text or raises `InvalidAction`.

    Actions run one at a time, in the order of the calls (several calls in one message are
    started in order by LangGraph's tool node), since each one moves the same browser session.
    """
    lock = threading.Lock()
    alock = asyncio.Lock()

    def run(action: Action, argument: str) -> str:
        with lock:
            return act(action, argument)

    async def arun(action: Action, argument: str) -> str:
        async with alock:
            return await asyncio.to_thread(run, action, argument)

    def search(query: str) -> str:
        return run("search", query)

    async def asearch(query: str) -> str:
        return await arun("search", query)

    def click(button: str) -> str:
        return run("click", button)

    async def aclick(button: str) -> str:
        return await arun("click", button)

    return [
        StructuredTool.from_function(
            search,
            coroutine=asearch,
            name="search",
            description="search[query]: search the store for products matching the query "
            "(only on the search page). Returns the results page.",
            handle_tool_error=True,
        ),
        StructuredTool.from_function(
            click,
            coroutine=aclick,
            name="click",
            description="click[button]: click a button, product id or option value shown on the "
            "current page, exactly as written there. Returns the next page.",
            handle_tool_error=True,
        ),
    ]


def clickable_list(clickables: list[str]) -> str:
    """The page's clickable elements, for an invalid-action message."""
    return ", ".join(repr(c) for c in clickables) if clickables else "nothing"
