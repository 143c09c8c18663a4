"""The capability set: a documented, editable YAML (the default ships as ``capabilities.yaml``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from slowthink.types import SlowthinkError

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Capability:
    name: str
    description: str
    keywords: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()

    def points(self, text: str) -> int:
        """Rule points of a step: one per keyword found, two per pattern that matches."""
        low = text.lower()
        return sum(k in low for k in self.keywords) + 2 * sum(bool(p.search(text)) for p in self.patterns)


@dataclass(frozen=True)
class CapabilitySet:
    capabilities: tuple[Capability, ...]
    default: str
    source: str

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.capabilities]

    def __contains__(self, name: object) -> bool:
        return name in self.names


def _fail(source: str, problem: str) -> SlowthinkError:
    return SlowthinkError(
        f"capability set {source}: {problem} (see the default capabilities.yaml of slowthink.analyze)"
    )


def parse_capabilities(text: str, source: str) -> CapabilitySet:
    """A capability set from YAML text; any mistake is one error naming the file and the field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise _fail(source, f"not valid YAML ({str(e).splitlines()[0]})") from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("capabilities"), list)
        or not data["capabilities"]
    ):
        raise _fail(source, "expected a mapping with a non-empty 'capabilities' list")
    caps = []
    for i, c in enumerate(data["capabilities"]):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not NAME.match(c["name"]):
            raise _fail(source, f"capability {i + 1} needs a 'name' of letters, digits and _")
        extra = set(c) - {"name", "description", "keywords", "patterns"}
        if extra:
            raise _fail(source, f"capability '{c['name']}' has unknown field(s) {', '.join(sorted(extra))}")
        kws, pats = c.get("keywords") or [], c.get("patterns") or []
        if not isinstance(kws, list) or not isinstance(pats, list):
            raise _fail(source, f"capability '{c['name']}': keywords and patterns must be lists")
        try:
            compiled = tuple(re.compile(str(p), re.IGNORECASE | re.MULTILINE) for p in pats)
        except re.error as e:
            raise _fail(source, f"capability '{c['name']}': bad pattern ({e})") from None
        caps.append(
            Capability(
                c["name"], str(c.get("description") or ""), tuple(str(k).lower() for k in kws), compiled
            )
        )
    names = [c.name for c in caps]
    if len(set(names)) != len(names):
        raise _fail(source, "capability names must be unique")
    default = data.get("default", names[-1])
    if default not in names:
        raise _fail(source, f"default '{default}' is not one of {', '.join(names)}")
    return CapabilitySet(tuple(caps), default, source)


def load_capabilities(path: Path | None = None) -> CapabilitySet:
    """The capability set of ``path``, or the default one of the package."""
    if path is None:
        ref = resources.files("slowthink.analyze").joinpath("capabilities.yaml")
        return parse_capabilities(ref.read_text(encoding="utf-8"), "capabilities.yaml (default)")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise SlowthinkError(f"cannot read capability set {path}: {e.strerror}; pass a YAML file") from None
    return parse_capabilities(text, str(path))
