"""Command-line options built from documented dataclass fields: a field is documented once.

A config dataclass documents each field in the attribute docstring under it (what Sphinx reads as
well). :class:`FieldOptions` turns those fields into typer options: the name, type, default and
help come from the field; a :class:`Flag` says where the command line differs (aliases, a type a
shell can give, a default of the command's own, a note on the option's shape, a parser to the
field's value). :func:`with_options` splices the options into a command function in place of its
``**options``, and :meth:`FieldOptions.values` turns what the command received back into field
values.

>>> from slowthink.evaluate.config import EvalConfig
>>> opts = FieldOptions(EvalConfig, {"ns": flag("--n", type=str)}, {"engine_options": "-E"})
>>> opts.option_names("limit"), opts.option_names("share_samples"), opts.option_names("ignore_images")
(('--limit',), ('--share-samples/--no-share-samples',), ('--ignore-images',))
>>> opts.help("stepwise_ns").endswith("None: --n.")
True
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import re
import textwrap
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field
from typing import Annotated, Any, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])

#: :attr:`Flag.default` when the option takes the field's default.
FIELD_DEFAULT: Any = object()


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Each field's attribute docstring (the string literal right under it), read from the class source.

    >>> from slowthink.evaluate.config import EvalConfig
    >>> field_docs(EvalConfig)["seed"]
    'Base seed of every request.'
    """
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for stmt, after in zip(body, body[1:]):
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[stmt.target.id] = inspect.cleandoc(after.value.value)
    return docs


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


_ROLE = re.compile(r":(\w+):`(~?)([^`]+)`")


def help_text(doc: str, attrs: Mapping[str, str] | None = None) -> str:
    """A docstring as one plain line of help: reST roles and literals unwrapped, ``:attr:`x``` as
    ``attrs[x]`` (the option that sets field ``x``).

    >>> help_text("Reads :attr:`data` (see :mod:`~a.b.c`);\\n``None``: all.", {"data": "--data"})
    'Reads --data (see c); None: all.'
    """

    def role(m: re.Match[str]) -> str:
        target = m[3]
        if m[1] == "attr" and attrs and target in attrs:
            return attrs[target]
        return target.rsplit(".", 1)[-1] if m[2] else target

    return " ".join(_ROLE.sub(role, doc).replace("``", "").split())


@dataclass(frozen=True)
class Flag:
    """How one field appears on the command line, where it differs from what the field gives."""

    decls: tuple[str, ...] = ()
    """Option names and aliases (``("--benchmark", "-b")``). None given: ``--field-name``, and for a
    bool field an on/off pair ``--x/--no-x`` when it defaults to True, a switch ``--x`` otherwise."""
    type: Any = None
    """The option's type when the field's is not one a command line gives (``str`` for a comma list)."""
    default: Any = FIELD_DEFAULT
    """The option's default when it is not the field's."""
    note: str = ""
    """What the command line adds to the field's help: the option's shape, a default of its own."""
    parse: Callable[[Any], Any] | None = None
    """Option value -> field value (None: the value as given)."""


def flag(*decls: str, **kwargs: Any) -> Flag:
    """``Flag(decls, **kwargs)``: ``flag("--benchmark", "-b")``."""
    return Flag(decls, **kwargs)


@dataclass(frozen=True)
class FieldOptions:
    """The options of a command built from the fields of the dataclass ``cls``, one per field.

    Every field needs an attribute docstring (its help). ``config_only`` names the fields that get
    no option of their own, each with where the command line gives it instead.
    """

    cls: type
    flags: Mapping[str, Flag] = field(default_factory=dict)
    config_only: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = {f.name for f in dataclasses.fields(self.cls)}
        stray = sorted((set(self.flags) | set(self.config_only)) - names)
        if stray:
            raise TypeError(f"{self.cls.__name__} has no field(s) {', '.join(stray)}")
        docs = field_docs(self.cls)
        undocumented = sorted(names - set(docs))
        if undocumented:
            raise TypeError(
                f"{self.cls.__name__} field(s) {', '.join(undocumented)} have no docstring (their --help text)"
            )

    @property
    def names(self) -> list[str]:
        """The fields that have an option, in field order."""
        return [f.name for f in dataclasses.fields(self.cls) if f.name not in self.config_only]

    def flag(self, name: str) -> Flag:
        return self.flags.get(name, Flag())

    def _field(self, name: str) -> dataclasses.Field[Any]:
        return {f.name: f for f in dataclasses.fields(self.cls)}[name]

    def default(self, name: str) -> Any:
        """The option's default: the flag's own, else the field's."""
        f, fl = self._field(name), self.flag(name)
        if fl.default is not FIELD_DEFAULT:
            return fl.default
        if f.default is not MISSING:
            return f.default
        return f.default_factory() if f.default_factory is not MISSING else None

    def type(self, name: str) -> Any:
        return self.flag(name).type or _hints(self.cls)[name]

    def option_names(self, name: str) -> tuple[str, ...]:
        """The option's declarations: the flag's, or ``--field-name`` (``--x/--no-x`` for a bool on by default)."""
        decls = self.flag(name).decls
        if decls:
            return decls
        long = "--" + name.replace("_", "-")
        if self.type(name) is bool and self.default(name) is True:
            return (f"{long}/--no-{long[2:]}",)
        return (long,)

    @functools.cached_property
    def attrs(self) -> dict[str, str]:
        """Field -> its main option name, for ``:attr:`field``` in the help texts."""
        return {n: self.option_names(n)[0].split("/")[0] for n in self.names}

    def help(self, name: str) -> str:
        """The option's help: the field's docstring, then the flag's note."""
        text = help_text(field_docs(self.cls)[name], self.attrs)
        note = self.flag(name).note
        return f"{text} {note}" if note else text

    def option(self, name: str) -> Any:
        """``typer.Option(...)`` of one field, for a command that declares the parameter itself."""
        return typer.Option(*self.option_names(name), help=self.help(name))

    def parameters(self) -> list[inspect.Parameter]:
        """One keyword parameter per field with an option: ``Annotated[type, typer.Option(...)] = default``."""
        return [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[self.type(name), self.option(name)],
                default=self.default(name),
            )
            for name in self.names
        ]

    def values(self, received: Mapping[str, Any]) -> dict[str, Any]:
        """Field values from a command's parameters (each flag's ``parse`` applied), in field order."""
        out = {}
        for name in self.names:
            parse = self.flag(name).parse
            out[name] = parse(received[name]) if parse is not None else received[name]
        return out

    def build(self, received: Mapping[str, Any]) -> Any:
        """``cls(**values(received))``."""
        return self.cls(**self.values(received))

    def given(self, ctx: typer.Context) -> set[str]:
        """The fields whose option was given on the command line (not a default)."""
        given = set()
        for name in self.names:
            source = ctx.get_parameter_source(name)
            if source is not None and source.name == "COMMANDLINE":
                given.add(name)
        return given


def with_options(*sets: FieldOptions, before: str | None = None) -> Callable[[F], F]:
    """Decorator: the function's ``**options`` become the options of ``sets`` (placed before its own
    parameter ``before``, or after its own parameters); typer passes them in ``options`` by field name."""

    def wrap(func: F) -> F:
        sig = inspect.signature(func, eval_str=True)
        own = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        if len(own) == len(sig.parameters):
            raise TypeError(f"{func.__name__} needs **options to receive the generated options")
        added = [p for s in sets for p in s.parameters()]
        clash = {p.name for p in own} & {p.name for p in added}
        if clash:
            raise TypeError(f"{func.__name__}: parameter(s) {', '.join(sorted(clash))} defined twice")
        at = len(own)
        if before is not None:
            at = next((i for i, p in enumerate(own) if p.name == before), -1)
            if at < 0:
                raise TypeError(f"{func.__name__} has no parameter '{before}' to place the options before")
        head = own[:at]
        tail = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own[at:]]
        func.__signature__ = sig.replace(parameters=[*head, *added, *tail])  # type: ignore[attr-defined]
        return func

    return wrap


__all__ = ["FieldOptions", "Flag", "field_docs", "flag", "help_text", "with_options"]
