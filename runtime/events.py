"""Events from a label every hop: what ``edgernn run`` prints for a model that hears.

A voice-activity or keyword model labels every 10 ms; a user wants "speech from 0.03 s to
2.01 s". :class:`Events` turns the stream of labels into such events as they end, with the
rules silero-vad's ``get_speech_timestamps`` applies to its own frames (its defaults):

- a run of one label that is not a quiet one (:data:`QUIET`) is an event;
- quiet hops inside a run end it only once they last ``bridge_s`` (100 ms, silero-vad's
  ``min_silence_duration_ms``);
- an event shorter than ``min_s`` (250 ms, its ``min_speech_duration_ms``) is dropped;
- another non-quiet label ends the event at once and starts its own.

An event is reported when it ends: ``bridge_s`` after its last hop, or when the stream
closes. Times are seconds from the stream's first sample. A run resumed from a state file
numbers its hops on (``first_step``); an event open when the first run stopped is reported
in two parts, and a part under ``min_s`` is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

QUIET = frozenset({"silence", "_silence_", "_unknown_"})


@dataclass(frozen=True)
class Event:
    label: str
    start: float
    end: float

    def to_dict(self) -> dict:
        return {"event": self.label, "start": round(self.start, 3), "end": round(self.end, 3)}


class Events:
    def __init__(self, hop_s: float, *, bridge_s: float = 0.1, min_s: float = 0.25,
                 first_step: int = 0):
        self.hop_s = hop_s
        self.bridge = max(1, round(bridge_s / hop_s))   # quiet hops an event survives
        self.shortest = max(1, round(min_s / hop_s))
        self.step = first_step
        self._open: list | None = None                   # [label, first hop, last hop]

    def push(self, label: str) -> list[Event]:
        """The label of the next hop; returns the events that ended with it."""
        t, self.step = self.step, self.step + 1
        out: list[Event] = []
        if self._open is not None:
            if label == self._open[0]:
                self._open[2] = t
                return out
            if label not in QUIET or t - self._open[2] >= self.bridge:
                out += self._close()
        if self._open is None and label not in QUIET:
            self._open = [label, t, t]
        return out

    def close(self) -> list[Event]:
        """The stream ended: the event still open, if any."""
        return self._close()

    def _close(self) -> list[Event]:
        opened, self._open = self._open, None
        if opened is None or opened[2] - opened[1] + 1 < self.shortest:
            return []
        label, first, last = opened
        return [Event(label, round(first * self.hop_s, 6),
                      round((last + 1) * self.hop_s, 6))]


def events(labels, hop_s: float, **rules) -> list[Event]:
    """Every event in a finished sequence of labels."""
    found = Events(hop_s, **rules)
    out = [e for label in labels for e in found.push(label)]
    return out + found.close()
