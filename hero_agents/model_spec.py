"""One spec grammar for "a chat model", whoever uses it: the policy, a reflector, a user simulator.

::

    default                      SmolLM2-135M-Instruct in process (the embedded default)
    PATH                         a local transformers model folder, in process
    vllm:URL[#NAME]              a vLLM server (``hero serve``): its newest policy-vN, or NAME
    openai:MODEL                 a model of the OpenAI API, e.g. openai:gpt-4o-mini
    openai-compatible:URL#MODEL  any OpenAI-compatible server (vLLM, Azure OpenAI v1, ...)
    self                         the policy being trained (a reflector of the training loop)

A spec is parsed once, by `parse_model_spec`, into a `ModelSpec` that is passed along as it
is; ``str(spec)`` gives its canonical form back (it never holds a secret). Each user of a spec
says which kinds it takes; any other is one `ConfigError` that lists the forms it does take.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from hero_agents.errors import ConfigError

ModelKind = Literal["default", "folder", "vllm", "openai", "openai-compatible", "self"]

FORMS: dict[str, str] = {
    "default": "default                      SmolLM2-135M-Instruct in process",
    "folder": "PATH                         a local transformers model folder, in process",
    "vllm": "vllm:URL[#NAME]              a vLLM server (hero serve): its newest policy-vN, "
    "or NAME",
    "openai": "openai:MODEL                 the OpenAI API, e.g. openai:gpt-4o-mini",
    "openai-compatible": "openai-compatible:URL#MODEL  any OpenAI-compatible server, e.g. "
    "openai-compatible:http://127.0.0.1:8000/v1#Qwen",
    "self": "self                         the policy being trained",
}
"""One line per form, for help texts and errors."""

POLICY_KINDS: tuple[ModelKind, ...] = ("default", "folder", "vllm")
USER_SIM_KINDS: tuple[ModelKind, ...] = ("default", "folder", "vllm", "openai", "openai-compatible")
REFLECTOR_KINDS: tuple[ModelKind, ...] = (
    "self",
    "default",
    "folder",
    "vllm",
    "openai",
    "openai-compatible",
)

_OLD_FORMS = {"local": "local:", "self": "self:"}
"""Prefixes of the earlier per-role grammars, answered with the spec to write instead."""


def forms(kinds: Collection[str]) -> str:
    """The forms of `kinds`, one per line, indented."""
    return "\n".join(f"  {FORMS[kind]}" for kind in FORMS if kind in kinds)


@dataclass(frozen=True)
class ModelSpec:
    """A parsed chat-model spec (see the module docstring)."""

    kind: ModelKind
    name: str | None = None
    """The folder (``folder``), the model's name (``openai``, ``openai-compatible``), or the
    served version a ``vllm`` spec pins (None: the newest)."""
    base_url: str | None = None

    @property
    def in_process(self) -> bool:
        """A model this process loads (``default`` or a folder)."""
        return self.kind in ("default", "folder")

    @property
    def path(self) -> Path | None:
        """The model folder of a ``folder`` spec."""
        return Path(self.name) if self.kind == "folder" and self.name else None

    def __str__(self) -> str:
        if self.kind in ("default", "self"):
            return self.kind
        if self.kind == "folder":
            return str(self.name)
        if self.kind == "vllm":
            return f"vllm:{self.base_url}" + (f"#{self.name}" if self.name else "")
        if self.kind == "openai":
            return f"openai:{self.name}"
        return f"openai-compatible:{self.base_url}#{self.name}"


def api_key(spec: ModelSpec, given: str | None, variable: str) -> str | None:
    """The API key for `spec`'s server: `given`, else ``$variable`` (the role's own), else, for
    the OpenAI API, ``$OPENAI_API_KEY``, which it cannot do without (a `ConfigError` naming both
    variables); None for other servers, which usually take none."""
    if given:
        return given
    if os.environ.get(variable):
        return os.environ[variable]
    if spec.kind == "openai":
        key = os.environ.get("OPENAI_API_KEY")
        if not key:
            raise ConfigError(f"{spec} needs an API key: set ${variable} or $OPENAI_API_KEY")
        return key
    return None


class BadModelSpec(ValueError):
    """Why a spec is not valid (without the list of forms: the caller adds its own)."""


def _url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadModelSpec(f"{url!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise BadModelSpec("the URL holds credentials; put the key in an environment variable")
    if parts.query or parts.fragment:
        raise BadModelSpec("the URL may not have a query string")
    return url.rstrip("/")


def read_model_spec(text: str) -> ModelSpec:
    """Parse `text` into a `ModelSpec` of any kind; a bad one raises `BadModelSpec`."""
    spec = text.strip()
    scheme, sep, rest = spec.partition(":")
    if spec in ("default", "self"):
        return ModelSpec(kind=spec)  # type: ignore[arg-type]
    if scheme == "default" and sep:
        raise BadModelSpec("'default' takes no argument")
    if sep and scheme in _OLD_FORMS:
        instead = rest.strip() or "default"
        raise BadModelSpec(f"'{_OLD_FORMS[scheme]}' is no longer a form: write {instead!r}")
    if scheme == "openai" and sep:
        if not rest.strip():
            raise BadModelSpec("'openai:' needs a model name")
        return ModelSpec(kind="openai", name=rest.strip())
    if scheme == "openai-compatible" and sep:
        url, hash_sign, model = rest.rpartition("#")
        if not hash_sign or not url or not model.strip():
            raise BadModelSpec("expected openai-compatible:URL#MODEL")
        return ModelSpec(kind="openai-compatible", name=model.strip(), base_url=_url(url))
    if scheme == "vllm" and sep:
        url, hash_sign, version = rest.partition("#")
        if hash_sign and not version.strip():
            raise BadModelSpec("expected vllm:URL or vllm:URL#NAME")
        return ModelSpec(kind="vllm", name=version.strip() or None, base_url=_url(url))
    path = Path(spec).expanduser()
    if spec and (path / "config.json").is_file():
        return ModelSpec(kind="folder", name=str(path))
    reason = "no such folder" if not path.exists() else "a folder without config.json"
    raise BadModelSpec(f"not a known form, and {reason}")


def parse_model_spec(text: str, *, kinds: Collection[str], role: str) -> ModelSpec:
    """A `ModelSpec` of one of `kinds`; anything else is one `ConfigError` naming `role` (e.g.
    ``"policy"``) and listing the forms it takes."""
    try:
        spec = read_model_spec(text)
        if spec.kind not in kinds:
            raise BadModelSpec(f"a {role} cannot be {FORMS[spec.kind].split()[0]!r}")
    except BadModelSpec as problem:
        raise ConfigError(
            f"invalid {role} spec {text!r}: {problem}. Valid forms:\n{forms(kinds)}"
        ) from None
    return spec
