"""The built-in tasks, one per application family; each generates its own data."""

from __future__ import annotations

from edgernn.errors import ConfigError
from edgernn.tasks.base import Split, Task, TaskData
from edgernn.tasks.charlm import CharLMTask
from edgernn.tasks.forecast import ForecastTask
from edgernn.tasks.keyword import KeywordTask

TASKS: dict[str, Task] = {t.name: t for t in (KeywordTask(), ForecastTask(), CharLMTask())}
DEFAULT_TASK = "keyword"


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(f"unknown task {name!r}; built-in tasks are {', '.join(TASKS)}") from None


__all__ = ["DEFAULT_TASK", "TASKS", "Split", "Task", "TaskData", "get_task"]
