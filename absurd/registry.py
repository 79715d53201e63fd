"""Task definitions: a name bound to a function, its params model and how it runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
from pydantic import BaseModel

from absurd.errors import UnknownTaskError
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
            known = ", ".join(sorted(self._tasks)) or "none"
            raise UnknownTaskError(f"unknown task {name!r}; registered tasks: {known}") from None

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
