"""A tokenizer's chat template, rendered and tokenized so that only the template makes control
tokens.

The text inside a chat (messages, tool arguments and results, hindsight notes, tool schemas)
comes from traces and is untrusted. Tokenizing a rendered chat as a whole parses every
special-token string in it wherever it came from: a tool result holding
``<|im_end|>\\n<|im_start|>system\\n...`` would open a real system turn.

`ChatTemplate.render` marks the special-token strings in a chat's strings before the template
sees them, so the special tokens left in the rendering are the template's own.
`ChatTemplate.encode` splits a rendering at them and tokenizes the text in between with
special-token parsing off (``split_special_tokens``), the marked strings restored. A tokenizer
splits its input at special tokens before anything else, so for a chat whose strings hold none,
the ids are exactly those of tokenizing the whole rendering (what vLLM and
``apply_chat_template(tokenize=True)`` give): no token drift.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from hero_agents.messages import template_messages
from hero_agents.trajectory import Message

_ESCAPE = "\ue000"
_END = "\ue001"
"""A marked string is ``_ESCAPE + number + _END`` (private-use characters, which chat
templates copy as they are); number 0 stands for `_ESCAPE` itself."""
_MARK = re.compile(f"{_ESCAPE}(\\d+){_END}")


def _alternation(strings: Sequence[str]) -> str:
    """A regex matching any of `strings`, the longest first where several start alike."""
    return "|".join(re.escape(s) for s in sorted(strings, key=len, reverse=True))


class ChatTemplate:
    """Renders OpenAI-format chats with `tokenizer`'s chat template and tokenizes them, with
    special tokens only where the template put them (see the module docstring).

    A rendering is *marked* text: slice and join it like the template's text, turn it into ids
    with `encode` and into the template's plain text with `text`.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        special = {i: t for i, t in tokenizer.added_tokens_decoder.items() if t.special}
        self._ids = {token.content: i for i, token in special.items()}
        self._tokens = {token.content: token for token in special.values()}
        self._marked = [_ESCAPE, *sorted(self._ids)]
        self._number = {string: number for number, string in enumerate(self._marked)}
        self._to_mark = re.compile(_alternation(self._marked))
        self._split = re.compile(f"({_alternation(list(self._ids))})") if self._ids else None

    def _mark(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._to_mark.sub(
                lambda match: f"{_ESCAPE}{self._number[match.group()]}{_END}", value
            )
        if isinstance(value, list | tuple):
            return [self._mark(item) for item in value]
        if isinstance(value, dict):
            return {self._mark(key): self._mark(item) for key, item in value.items()}
        return value

    def render(
        self,
        messages: Sequence[Message],
        tools: Sequence[Any] | None = None,
        *,
        add_generation_prompt: bool = False,
    ) -> str:
        """`messages` and `tools` through the chat template, as marked text.

        Raises what the template raises (``jinja2.TemplateError``, ``ValueError``...).
        """
        return self.tokenizer.apply_chat_template(
            self._mark(template_messages(messages)),
            tools=self._mark(list(tools)) if tools else None,
            add_generation_prompt=add_generation_prompt,
            tokenize=False,
        )

    def text(self, rendered: str) -> str:
        """The template's text of a rendering: marked strings back to what they stand for."""
        return _MARK.sub(lambda match: self._marked[int(match.group(1))], rendered)

    def encode(self, rendered: str) -> list[int]:
        """Token ids of a rendering: special tokens where the template put them, and text
        (even text spelling a special token) everywhere else."""
        if self._split is None:
            pieces = [rendered]
        else:
            pieces = self._split.split(rendered)  # text, special, text, ..., text
        texts, specials = pieces[0::2], pieces[1::2]
        for position, special in enumerate(specials):  # tokens that swallow nearby whitespace
            token = self._tokens[special]
            if token.lstrip:
                texts[position] = texts[position].rstrip()
            if token.rstrip:
                texts[position + 1] = texts[position + 1].lstrip()
        encoded = self.tokenizer(
            [self.text(text) for text in texts],
            add_special_tokens=False,
            split_special_tokens=True,
        )["input_ids"]
        ids = list(encoded[0])
        for special, following in zip(specials, encoded[1:], strict=True):
            ids.append(self._ids[special])
            ids.extend(following)
        return ids
