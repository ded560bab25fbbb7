"""Typed errors for the whole stack; every message names what is wrong and, where it can, what was meant."""

from __future__ import annotations


class EmbodiedError(Exception):
    """Base class: the CLI turns these into a one-line message and a non-zero exit."""


class UnknownObjectError(EmbodiedError, ValueError):
    """An object, colour or location name that does not exist."""


class TaskError(EmbodiedError, ValueError):
    """A task line or scene that cannot be used (malformed, inconsistent, impossible to lay out)."""


class PredicateError(TaskError):
    """An unknown goal predicate or a predicate with the wrong arguments."""


class SkillError(EmbodiedError, ValueError):
    """A skill call that names an unknown skill or carries bad parameters."""
