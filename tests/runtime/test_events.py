"""Events from per-hop labels (runtime/events.py): silero-vad's rules on its own defaults,
streamed and whole alike."""

from __future__ import annotations

import pytest

from edgernn.runtime.events import Event, Events, events

S, Q = "speech", "silence"


def test_a_run_is_an_event_in_seconds():
    assert events([Q] * 5 + [S] * 30 + [Q] * 20, 0.01) == [Event(S, 0.05, 0.35)]


def test_pauses_under_100_ms_are_bridged_and_longer_ones_split():
    labels = [S] * 30 + [Q] * 9 + [S] * 30 + [Q] * 10 + [S] * 30
    assert events(labels, 0.01) == [Event(S, 0.0, 0.69), Event(S, 0.79, 1.09)]


def test_events_under_250_ms_are_dropped():
    assert events([S] * 24 + [Q] * 50 + [S] * 25, 0.01) == [Event(S, 0.74, 0.99)]


def test_another_label_ends_an_event_at_once():
    labels = ["yes"] * 30 + ["no"] * 30 + ["_unknown_"] * 30
    assert events(labels, 0.01) == [Event("yes", 0.0, 0.3), Event("no", 0.3, 0.6)]


@pytest.mark.parametrize("cut", [0, 40, 42, 75])
def test_streamed_events_end_when_their_pause_has_lasted_and_resume_counts_on(cut):
    """Cut between events, a run and its resumed run report what the whole run reports."""
    labels = [S] * 30 + [Q] * 12 + [S] * 30 + [Q] * 3
    first, got, ended_at = Events(0.01), [], []
    for t, label in enumerate(labels[:cut]):
        new = first.push(label)
        got += new
        ended_at += [t] * len(new)
    got += first.close()                      # run closes its events when it stops
    second = Events(0.01, first_step=cut)     # a resumed run numbers its hops on
    for label in labels[cut:]:
        got += second.push(label)
    got += second.close()
    assert got == events(labels, 0.01) == [Event(S, 0.0, 0.3), Event(S, 0.42, 0.72)]
    assert ended_at == ([] if cut < 40 else [39])   # 10 quiet hops after its last, not later


def test_an_event_is_a_json_ready_dict():
    assert Event(S, 0.0, 0.3).to_dict() == {"event": "speech", "start": 0.0, "end": 0.3}
