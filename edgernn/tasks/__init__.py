"""Tasks (kinds of problem) and their built-in data sets.

``classify`` (sequence classification), ``forecast`` (one-step forecasting), ``charlm``
(character language model), ``keyword`` (keyword spotting on raw 16 kHz audio: the classifier
on spoken one-second clips) and ``vad`` (voice activity, every 10 ms of raw audio) run on the
user's ``--data`` or on their built-in generated data set.
"""

from __future__ import annotations

from edgernn.errors import ConfigError
from edgernn.tasks.base import Split, Task, TaskData
from edgernn.tasks.charlm import CharLMTask
from edgernn.tasks.forecast import ForecastTask
from edgernn.tasks.keyword import ClassifyTask
from edgernn.tasks.spoken import KeywordTask
from edgernn.tasks.vad import VadTask

TASKS: dict[str, Task] = {t.name: t for t in (KeywordTask(), ClassifyTask("classify"),
                                              ForecastTask(), CharLMTask(), VadTask())}
DEFAULT_TASK = "keyword"
# Sequence to sequence (edgernn/tasks/seq2seq.py) pairs texts with an encoder-decoder model: not
# a Task of frames and labels, but a task kind train, export and run take all the same.
TASK_NAMES = (*TASKS, "seq2seq")


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(f"unknown task {name!r}; built-in tasks are {', '.join(TASKS)}") from None


__all__ = ["DEFAULT_TASK", "TASKS", "TASK_NAMES", "Split", "Task", "TaskData", "get_task"]
