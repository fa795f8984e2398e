"""Redaction of personal data and secrets in trajectories, before they leave the machine.

A `Redactor` replaces e-mail addresses, phone numbers (with a ``+`` country code or written
with separators), payment card numbers (Luhn-checked), US social security numbers, IBANs
(checksum-validated), API keys, tokens and other secrets (labeled ones, AWS secret keys next to
their key id, random-looking values under key-like names), plus any patterns the user adds,
with placeholders such as ``<EMAIL_1>``. Placeholders are consistent within a trajectory: the
same value gets the same placeholder in every turn (e-mail addresses compared
case-insensitively, phone and card numbers by their digits), so a reflector can still see that
the address the user gave is the one the agent looked up. Numbering restarts with every
trajectory, so placeholders link nothing across trajectories.

What is redacted is every text a reflector is shown: the content of each message (contexts,
actions, observations; the text parts of content lists), tool-call arguments (every string in
them, keys too, when they are an object rather than a JSON string), and the task id. The
identifiers and enums of messages, tool calls and content parts (roles, tool names, tool-call
ids, types, statuses) and tool schemas are kept, and so are people's names: no pattern detects
them (add one with `RedactionRule.parse`). The README's "Production traces" section lists what
is covered and what is not.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hero_agents.errors import ConfigError
from hero_agents.trajectory import Message, Trajectory

_KIND = re.compile(r"^[A-Z][A-Z0-9_]*$")
_STRUCTURAL_KEYS = frozenset({"role", "type", "id", "tool_call_id", "name", "status"})
"""Fields of a message, a tool call or a content part that are identifiers or enums, never
free text (inside tool-call arguments the same keys hold data, and are redacted)."""
_ENVELOPE_KEYS = frozenset({"tool_calls", "invalid_tool_calls", "function", "function_call"})
"""Fields of a message that hold tool calls, whose own identifiers are kept."""


def _digits(text: str) -> str:
    return "".join(character for character in text if character.isdigit())


def _card(text: str) -> bool:
    """13 to 19 digits that start like a card number (2-6) and pass the Luhn checksum."""
    digits = _digits(text)
    if not 13 <= len(digits) <= 19 or digits[0] not in "23456":
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _secret(text: str) -> bool:
    """Looks like a secret, not a word: has a digit, a symbol or mixed case, or is long."""
    return not (text.isalpha() and (text.islower() or text.isupper())) or len(text) >= 16


def _phone_digits(text: str) -> bool:
    return 7 <= len(_digits(text)) <= 15


def _compact(text: str) -> str:
    return text.replace(" ", "").upper()


def _iban(text: str) -> bool:
    """The ISO 13616 checksum: the number, its first four characters moved to the end and
    letters read as 10-35, is 1 modulo 97."""
    compact = _compact(text)
    if not 15 <= len(compact) <= 34:
        return False
    return int("".join(str(int(c, 36)) for c in compact[4:] + compact[:4])) % 97 == 1


def _random_looking(text: str) -> bool:
    """Looks generated, not written: 16+ characters with letters and digits, and a Shannon
    entropy of at least 3 bits per character for hex strings, 4 for others (detect-secrets
    uses 3 and 4.5; random 20-character base64 keys stay under 4.5)."""
    if len(text) < 16 or text.isalpha() or not any(c.isdigit() for c in text):
        return False
    counts = Counter(text)
    entropy = -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())
    hexadecimal = all(c in "0123456789abcdefABCDEF" for c in text)
    return entropy >= (3.0 if hexadecimal else 4.0)


@dataclass(frozen=True)
class RedactionRule:
    """One kind of value to redact: what it looks like and when two values are the same."""

    kind: str
    """Placeholder name: values become ``<KIND_1>``, ``<KIND_2>``..."""
    pattern: re.Pattern[str]
    group: int | str = 0
    """The group of a match that holds the value (0: the whole match)."""
    check: Callable[[str], bool] | None = None
    """A further test of a matched value (e.g. the Luhn checksum of a card number)."""
    canonical: Callable[[str], str] = str
    """The form under which two values count as the same value."""
    shorten_at: str | None = None
    """Where a value that fails `check` may end instead: it is cut before each occurrence of
    this separator, the longest cut first, until one passes (a spaced IBAN followed by more
    groups of digits)."""

    @classmethod
    def parse(cls, text: str) -> RedactionRule:
        """A user rule from ``KIND=REGEX``; a group named ``value`` marks the part to redact."""
        kind, sep, regex = text.partition("=")
        kind = kind.strip()
        if not sep or not regex:
            raise ConfigError(f"redaction pattern {text!r}: expected KIND=REGEX, e.g. ORDER=W\\d+")
        if not _KIND.match(kind):
            raise ConfigError(
                f"redaction pattern {text!r}: the kind {kind!r} must be upper case letters, "
                "digits and underscores, starting with a letter (it names the placeholder)"
            )
        try:
            pattern = re.compile(regex)
        except re.error as error:
            raise ConfigError(f"redaction pattern {text!r}: not a valid regex ({error})") from None
        if pattern.match(""):
            raise ConfigError(f"redaction pattern {text!r}: it matches the empty string")
        return cls(
            kind=kind, pattern=pattern, group="value" if "value" in pattern.groupindex else 0
        )


def _rule(kind: str, regex: str, **options: Any) -> RedactionRule:
    return RedactionRule(kind=kind, pattern=re.compile(regex), **options)


_API_KEYS = "|".join(
    [
        r"sk-(?:proj-|svcacct-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{20,}",  # OpenAI, Anthropic
        r"gh[pousr]_[A-Za-z0-9]{36,}",  # GitHub tokens
        r"github_pat_[A-Za-z0-9_]{22,}",
        r"(?:AKIA|ASIA)[0-9A-Z]{16}",  # AWS access key ids
        r"xox[abposr]-[A-Za-z0-9-]{10,}",  # Slack
        r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+",  # Slack webhooks
        r"AIza[0-9A-Za-z_-]{35}",  # Google
        r"GOCSPX-[A-Za-z0-9_-]{20,}",  # Google OAuth client secrets
        r"(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,}",  # Stripe
        r"hf_[A-Za-z0-9]{30,}",  # Hugging Face
        r"glpat-[A-Za-z0-9_-]{20,}",  # GitLab
        r"npm_[A-Za-z0-9]{36}",  # npm
        r"SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}",  # SendGrid
    ]
)
_SECRET_NAMES = (
    r"api[_-]?key|apikey|client[_-]?secret|secret[_-]?key|secret|access[_-]?token|"
    r"auth[_-]?token|refresh[_-]?token|token|password|passwd|pwd"
)
_QUOTE = r"(?:\\*[\"'])?"
"""An optional quote, escaped or not (JSON inside a JSON string)."""
_KEY_LIKE_NAME = r"[\w.-]*(?i:secret|key|token|credential|passw|pwd|auth)[\w.-]*"
"""A field name that suggests a secret value (``AWS_SECRET_ACCESS_KEY``, ``AccountKey``...)."""
_AWS_ID = r"(?<![0-9A-Z])(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Z])"
_AWS_SECRET = r"(?<![A-Za-z0-9/+=])(?P<value>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
_NEAR = r"[\s\S]{0,200}?"
"""Up to 200 characters between an AWS access key id and its secret key."""

DEFAULT_RULES: tuple[RedactionRule, ...] = (
    # AWS secret keys next to their access key id (before that id becomes a placeholder)
    _rule("SECRET", _AWS_ID + _NEAR + _AWS_SECRET, group="value", check=_random_looking),
    _rule("SECRET", _AWS_SECRET + _NEAR + _AWS_ID, group="value", check=_random_looking),
    _rule(
        "SECRET",
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
    ),
    _rule("API_KEY", rf"(?<![\w-])(?:{_API_KEYS})(?![\w-])"),
    _rule("TOKEN", r"(?<![\w-])eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),
    _rule("TOKEN", r"(?i:\bbearer\s+)([A-Za-z0-9._~+/-]{16,}=*)", group=1),
    _rule(
        "TOKEN",
        rf"(?i:\bauthorization{_QUOTE}\s*[:=]\s*{_QUOTE}basic\s+)([A-Za-z0-9+/]{{4,}}={{0,2}})",
        group=1,
    ),
    _rule("SECRET", r"(?<=://)[^\s:/@]+:([^\s:/@]+)(?=@)", group=1),  # user:password@host
    _rule(
        "SECRET",
        rf"(?i:\b(?:{_SECRET_NAMES})\b){_QUOTE}\s*[:=]\s*{_QUOTE}([^\s\"',;&<>\\]{{6,}})",
        group=1,
        check=_secret,
    ),
    _rule(
        "SECRET",
        rf"(?<![\w.-]){_KEY_LIKE_NAME}{_QUOTE}\s*[:=]\s*{_QUOTE}([A-Za-z0-9/+=_.~-]{{16,}})",
        group=1,
        check=_random_looking,
    ),
    _rule(
        "EMAIL",
        r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}(?![\w-])",
        canonical=str.lower,
    ),
    _rule(
        "IBAN",
        r"(?<![\w-])[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?)"
        r"(?![\w-])",
        check=_iban,
        canonical=_compact,
        shorten_at=" ",
    ),
    _rule(
        "SSN",
        r"(?<![\w-])(?!000|666|9)\d{3}([ -])(?!00)\d{2}\1(?!0000)\d{4}(?![\w-])",
        canonical=_digits,
    ),
    _rule(
        "SSN",
        r"(?i:\b(?:ssn|social security (?:number|no\.?))\W{0,3})((?!000|666|9)\d{9})(?!\d)",
        group=1,
        canonical=_digits,
    ),
    _rule("CARD", r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w]|-\d)", check=_card, canonical=_digits),
    _rule(
        "PHONE",
        r"(?<![\w+])(?:"
        r"\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}"  # +44 20 7946 0958, +1 (555) 123-4567
        r"|\(\d{2,4}\)[ .-]?\d{3,4}[ .-]?\d{3,4}"  # (555) 123-4567
        r"|\d{3}[ .-]\d{3}[ .-]\d{4}"  # 555-123-4567
        r"|0\d{1,4}[ .-]\d{3,4}[ .-]?\d{3,4}"  # 020 7946 0958
        r"|0\d(?:[ .]\d\d){4}"  # 01 23 45 67 89
        r")(?![\w]|[.-]\d)",
        check=_phone_digits,
        canonical=_digits,
    ),
)
"""What is redacted by default, in the order rules apply (a value taken by one rule is a
placeholder for the rules after it)."""


def _shortened(rule: RedactionRule, value: str) -> str:
    """The longest cut of `value` before a `rule.shorten_at` that passes the check, or ''."""
    end = len(value)
    while rule.check is not None and rule.shorten_at:
        end = value.rfind(rule.shorten_at, 0, end)
        if end <= 0:
            break
        if rule.check(value[:end]):
            return value[:end]
    return ""


class RedactionSession:
    """The placeholders of one trajectory: the same value always gets the same placeholder."""

    def __init__(self, rules: tuple[RedactionRule, ...]) -> None:
        self._rules = rules
        self._placeholders: dict[tuple[str, str], str] = {}
        self._numbers: Counter[str] = Counter()
        self._done: dict[str, str] = {}  # contexts repeat their messages: redact each text once

    @property
    def counts(self) -> dict[str, int]:
        """Distinct values redacted so far, per kind."""
        return dict(self._numbers)

    def _placeholder(self, rule: RedactionRule, value: str) -> str:
        key = (rule.kind, rule.canonical(value))
        if key not in self._placeholders:
            self._numbers[rule.kind] += 1
            self._placeholders[key] = f"<{rule.kind}_{self._numbers[rule.kind]}>"
        return self._placeholders[key]

    def text(self, text: str) -> str:
        """`text` with every value of every rule replaced by its placeholder."""
        if text in self._done:
            return self._done[text]
        redacted = text
        for rule in self._rules:
            redacted = rule.pattern.sub(
                lambda match, rule=rule: self._replace(rule, match), redacted
            )
        self._done[text] = redacted
        return redacted

    def _replace(self, rule: RedactionRule, match: re.Match[str]) -> str:
        value = match.group(rule.group)
        if value and rule.check is not None and not rule.check(value):
            value = _shortened(rule, value)
        if not value:
            return match.group(0)
        start = match.start(rule.group)
        end = start + len(value)
        whole = match.group(0)
        offset = match.start(0)
        return whole[: start - offset] + self._placeholder(rule, value) + whole[end - offset :]

    def value(self, value: Any) -> Any:
        """Any JSON value with every string redacted, object keys included."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, dict):
            return {self.value(key): self.value(item) for key, item in value.items()}
        return value

    def message(self, message: Message) -> Message:
        """A chat message with its data redacted: the identifiers and enums of the message, its
        tool calls and its content parts are kept; every other string is redacted, whatever
        its key (tool-call arguments given as an object included)."""
        return self._envelope(message)

    def _envelope(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self._envelope(item) for item in value]
        if not isinstance(value, dict):
            return self.value(value)
        kept = {}
        for key, item in value.items():
            if key in _STRUCTURAL_KEYS and isinstance(item, str):
                kept[key] = item
            elif key in _ENVELOPE_KEYS or (key == "content" and isinstance(item, list)):
                kept[key] = self._envelope(item)
            else:
                kept[key] = self.value(item)
        return kept


@dataclass(frozen=True)
class RedactedTrajectory:
    """A trajectory as a reflector may see it, and how many values of each kind it hid."""

    trajectory: Trajectory
    counts: dict[str, int]


class Redactor:
    """Replaces personal data and secrets with placeholders that are consistent within a
    trajectory (see the module docstring for what is redacted).

    Args:
        rules: the rules to apply (default `DEFAULT_RULES`).
        extra: further rules applied before them, e.g. ``RedactionRule.parse("ORDER=W\\d+")``.
    """

    def __init__(
        self,
        rules: Iterable[RedactionRule] = DEFAULT_RULES,
        *,
        extra: Iterable[RedactionRule] = (),
    ) -> None:
        self.rules = (*extra, *rules)

    def session(self) -> RedactionSession:
        """Fresh placeholders, for one trajectory."""
        return RedactionSession(self.rules)

    def redact(self, trajectory: Trajectory) -> RedactedTrajectory:
        """A copy of `trajectory` in which every text a reflector is shown is redacted."""
        session = self.session()
        turns = [
            turn.model_copy(
                update={
                    "messages": [session.message(m) for m in turn.messages],
                    "action": session.message(turn.action),
                    "observation": [session.message(m) for m in turn.observation],
                }
            )
            for turn in trajectory.turns
        ]
        task_id = session.text(trajectory.task_id) if trajectory.task_id else trajectory.task_id
        redacted = trajectory.model_copy(update={"turns": turns, "task_id": task_id})
        return RedactedTrajectory(trajectory=redacted, counts=session.counts)


@dataclass
class RedactionReport:
    """What was redacted over many trajectories: distinct values per kind."""

    trajectories: int = 0
    redacted_trajectories: int = 0
    """Trajectories in which at least one value was redacted."""
    values: Counter[str] = field(default_factory=Counter)
    """Distinct values per kind, summed over trajectories."""

    def add(self, counts: Mapping[str, int]) -> None:
        self.trajectories += 1
        if counts:
            self.redacted_trajectories += 1
            self.values.update(counts)
