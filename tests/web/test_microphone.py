"""The page listens: a microphone through WebAudio and an AudioWorklet (devices/web/listen.js),
10 ms hops into the same step graph, events as Python's runtime makes them (events.js mirrors
runtime/events.py).

The microphone is Chromium's fake capture device playing a WAV file of real speech (silero-vad's
recording, tests/data/speech) at real-time speed. The model is a loudness detector written by
hand behind edgernn's audio front end, so its events on the recording are known without
training: speech where the mean normalised log-mel level is above the recording's 40th
percentile, smoothed by the GRU's update gate. It is a chunk graph, as voice activity exports
by default, so the page runs 30 ms (3 hops) a call.

What is held:
- per hop, the page's labels are Python's on the samples the page heard (the same front end
  and weights in WebAssembly; a label could only differ on a tie within WEB_VS_NATIVE), and so
  are the events;
- the samples heard are the file's (the browser resamples to its device rate and back to
  16 kHz: correlation >= 0.98 at the best lag, under 100 ms);
- the labels equal Python's on the file itself, cut at the same hop boundaries, on 97 % of the
  hops or more: a hop near the threshold can flip with the resampling.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tests import audiodata
from tests.conftest import run_cli
from tests.web.conftest import CHROMIUM

RATE, HOP = 16000, 160
LEAD = 0.5                     # seconds of silence before the speech (and after it)


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    """The loudness detector's file, the WAV the fake microphone plays, and the page folder."""
    d = tmp_path_factory.mktemp("microphone")
    model = audiodata.loudness_detector(d, seconds=3.5)          # two stretches of speech
    speech = audiodata.recording()[:int(3.5 * RATE)]
    clip = np.concatenate([np.zeros(int(LEAD * RATE)), speech, np.zeros(int(LEAD * RATE))])
    audiodata.write_wav(d / "clip.wav", clip)
    done = run_cli("web", model, "-o", d / "site")
    assert done.returncode == 0, done.stderr
    return model, d / "clip.wav", d / "site", clip.astype(np.float32)


def _fidelity(got: np.ndarray, clip: np.ndarray) -> tuple[float, int]:
    """(correlation at the best lag, the lag in samples) of what the page heard and the file."""
    n = min(len(got), len(clip))
    lag = int(np.argmax(np.correlate(got[:n], clip[:n], "full"))) - (n - 1)
    a = got[max(lag, 0):][:n - abs(lag)]
    b = clip[max(-lag, 0):][:len(a)]
    return float(np.corrcoef(a, b)[0, 1]), lag


@pytest.fixture(scope="module")
def heard(browser, detector):
    """What the page heard, labelled and found, listening to the clip as a microphone. Chromium's
    fake capture device plays the file in real time; on a saturated machine (both cores busy
    under make test) it can underrun and put a gap into what it delivers (correlation 0.47 and
    0.78 in two loaded runs on 2026-12-08, one of them make test; at least 0.98 run alone). Such a
    capture is taken again, once: every check below runs on the capture kept."""
    clip = detector[3]
    for _ in range(2):
        out = _listen(browser, detector)
        if _fidelity(np.array(out["heard"], np.float32).ravel(), clip)[0] >= 0.98:
            break
    return out


def _listen(browser, detector) -> dict:
    from edgernn.devices.web_page import serve_folder

    _, wav, site, clip = detector
    server = serve_folder(site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # a browser of its own: the fake microphone is chosen when Chromium starts
    b = browser.browser_type.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}%noloop"])
    page = b.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html?record=1")
        page.wait_for_function("window.edgernnPage && window.edgernnPage.ready",
                               timeout=60_000)
        page.click("#listen")                    # a user's click: the AudioContext may start
        page.wait_for_function("window.edgernnPage.listening === true", timeout=30_000)
        hops = len(clip) // HOP + 20             # the clip, and 200 ms more
        page.wait_for_function(f"window.edgernnPage.heard.length >= {hops}",
                               timeout=60_000)
        page.click("#listen")
        page.wait_for_function("window.edgernnPage.listening === false", timeout=30_000)
        out = page.evaluate("""() => { const p = window.edgernnPage;
          return { events: p.events, labels: p.hopLabels, error: p.error,
                   heard: p.heard.map((h) => Array.from(h)),
                   shown: document.querySelectorAll('#events li').length }; }""")
    finally:
        b.close()
        server.shutdown()
        server.server_close()
    assert not errors and out["error"] is None, (errors, out["error"])
    return out


@pytest.mark.slow
def test_the_page_labels_every_hop_it_hears_as_python_does(heard, detector):
    from edgernn.runtime import load
    from edgernn.runtime.events import events

    model = load(detector[0])
    hops = np.array(heard["heard"], np.float32)
    assert hops.shape[1] == HOP and len(heard["labels"]) == len(hops)
    want = [model.labels[i] for i in model.stream().feed(hops).argmax(-1)]
    assert heard["labels"] == want
    assert heard["events"] == [e.to_dict() for e in events(want, HOP / RATE)]
    assert heard["shown"] == len(heard["events"]) >= 2       # listed on the page too


@pytest.mark.slow
def test_what_it_hears_is_the_file_and_labelled_as_the_file_is(heard, detector):
    from edgernn.runtime import load

    model, _, _, clip = detector
    got = np.array(heard["heard"], np.float32).ravel()
    correlation, lag = _fidelity(got, clip)
    # Chromium plays the file from when capture starts; on a busy machine the page's first
    # hops can come part-way into it (163 ms once under make test), within the lead silence
    assert -0.8 * LEAD * RATE < lag < 0.1 * RATE, lag
    assert correlation >= 0.98
    # the file on the page's grid of hops (the capture starts part-way into a hop), in Python
    aligned = clip[-lag:] if lag < 0 else np.concatenate([np.zeros(lag, np.float32), clip])
    python = load(model)
    k = min(len(aligned), len(got)) // HOP
    assert k >= (len(clip) + min(lag, 0)) // HOP - 10
    y = python.stream().feed(aligned[:k * HOP].reshape(k, HOP))
    agree = np.mean([python.labels[i] == label for i, label in zip(y.argmax(-1), heard["labels"])])
    assert agree >= 0.97, agree


def test_the_events_rules_are_pythons(harness):
    """events.js against runtime/events.py on label runs of every length around the rules'
    limits (100 ms bridges, 250 ms events), keywords next to each other, a resumed stream."""
    from edgernn.runtime.events import Events

    rng = np.random.default_rng(5)
    names = ["speech", "silence", "_unknown_", "yes", "no", "_silence_"]
    cases = []
    for k in range(40):
        runs = [(names[rng.integers(len(names))], int(rng.integers(1, 40))) for _ in range(12)]
        cases.append(([name for name, n in runs for _ in range(n)], int(rng.integers(0, 500))))
    got = harness.evaluate("""async (cases) => {
      const { Events } = await import("./events.js");
      return cases.map(([labels, first]) => {
        const found = new Events(0.01, { firstStep: first }), out = [];
        for (const l of labels) out.push(...found.push(l));
        return out.concat(found.close());
      });
    }""", cases)
    for (labels, first), events in zip(cases, got):
        found = Events(0.01, first_step=first)
        want = [e.to_dict() for label in labels for e in found.push(label)]
        assert events == want + [e.to_dict() for e in found.close()]


def test_a_model_that_takes_frames_cannot_listen(harness):
    said = harness.evaluate("""async () => {
      const m = await import("./edgernn.js");
      const { listen } = await import("./listen.js");
      const model = await m.load("./compact.onnx");
      try { await listen(model.stream()); return "listened"; }
      catch (e) { return `${e.name}: ${e.message}`; }
    }""")
    assert said.startswith("ModelError: this model takes frames of features, not audio"), said
