"""Task definitions: a name bound to a function, its params model and how it runs."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
from pydantic import BaseModel

from absurd.errors import ConfigurationError, UnknownTaskError
from absurd.options import SpawnOptions

Mode = Literal["thread", "process"]
# Called inside the completion transaction, so product rows commit together with the task's result.
CompletionHook = Callable[[psycopg.Connection, Any, Any], None]


@dataclass(frozen=True)
class TaskDefinition:
    """What a worker needs to run one kind of task."""

    name: str
    fn: Callable[..., Any]
    params_model: type[BaseModel] | None = None
    mode: Mode = "thread"
    options: SpawnOptions = field(default_factory=SpawnOptions)
    permanent_errors: tuple[type[BaseException], ...] = ()
    on_complete: CompletionHook | None = None

    def parse_params(self, raw: Any) -> Any:
        """Validate raw JSON params into the params model (or pass them through)."""
        if self.params_model is None:
            return raw
        return self.params_model.model_validate(raw or {})


class Registry:
    """A set of task definitions, looked up by name."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskDefinition] = {}

    def add(self, definition: TaskDefinition) -> TaskDefinition:
        """Register a definition; a second one with the same name is an error."""
        if definition.name in self._tasks:
            raise ValueError(f"task {definition.name!r} is already registered")
        self._tasks[definition.name] = definition
        return definition

    def task(
        self,
        name: str,
        *,
        params: type[BaseModel] | None = None,
        mode: Mode = "thread",
        options: SpawnOptions | None = None,
        permanent_errors: tuple[type[BaseException], ...] = (),
        on_complete: CompletionHook | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator registering ``fn(ctx, params)`` under ``name``."""

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.add(
                TaskDefinition(
                    name, fn, params, mode, options or SpawnOptions(), permanent_errors, on_complete
                )
            )
            return fn

        return register

    def get(self, name: str) -> TaskDefinition:
        """The definition for ``name``; UnknownTaskError lists the known names."""
        try:
            return self._tasks[name]
        except KeyError:
            raise UnknownTaskError(unknown_task_message(name, self._tasks, "registered")) from None

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def names(self) -> list[str]:
        """Registered task names, sorted."""
        return sorted(self._tasks)

    def merge(self, other: Registry) -> Registry:
        """A new registry holding both sets of definitions."""
        merged = Registry()
        for definition in [*self._tasks.values(), *other._tasks.values()]:
            merged.add(definition)
        return merged


# What ``--registry`` falls back to when neither it nor ABSURD_REGISTRY is given.
BUILTIN_REGISTRY = "absurd.builtin_tasks:builtin"
REGISTRY_ENV = "ABSURD_REGISTRY"


def load_registry(specs: Sequence[str]) -> Registry:
    """Merge the registries named as ``module:attribute`` (the attribute defaults to ``registry``)."""
    merged = Registry()
    for spec in specs:
        module_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
            found = getattr(module, attr or "registry")
        except (ImportError, AttributeError) as exc:
            raise ConfigurationError(
                f"cannot load task registry {spec!r}: {exc}; name it as module:attribute, "
                f"e.g. {BUILTIN_REGISTRY}"
            ) from exc
        if not isinstance(found, Registry):
            raise ConfigurationError(f"{spec!r} is a {type(found).__name__}, not a Registry")
        merged = merged.merge(found)
    return merged


def closest_first(name: str, known: Collection[str]) -> list[str]:
    """``known`` sorted with the names closest to ``name`` first."""
    import difflib  # only for this message: a worker starts without it

    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    return close + sorted(set(known) - set(close))


def unknown_task_message(name: str, known: Collection[str], source: str, what: str = "task") -> str:
    """Why ``name`` is refused, listing the ``source`` tasks (``registered``, ``served``) closest first."""
    if not known:
        return f"unknown {what} {name!r}: no tasks are {source}"
    return f"unknown {what} {name!r}; {source} tasks, closest first: {', '.join(closest_first(name, known))}"
