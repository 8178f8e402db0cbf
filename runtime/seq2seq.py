"""Encoder-decoder models on the device: greedy and beam search over the step decoder.

``load("model.onnx")`` of either file of an exported pair gives a :class:`Seq2SeqModel`::

    g2p = edgernn.runtime.load("g2p.onnx")
    g2p.translate("edge").text                       # greedy
    g2p.translate("edge", beam=4).hypotheses         # n-best, length-normalised scores
    g2p.translate_batch(["edge", "runtime"], beam=4) # many inputs, one decoder call a step

The encoder runs once per input (each at its own length: no padding reaches a bidirectional
encoder). The decoder then runs once per output step for every live hypothesis of every input
together: hypotheses are rows of one batched call, and after each step the rows' state is
reordered by parent in the state store (:meth:`~edgernn.runtime.engine.Engine.reorder`).
Beam 1 is greedy decoding exactly. Scores are log-probabilities per output token, the end
token included (length-normalised), so long and short outputs compare fairly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgernn.errors import ConfigError, DataError, ModelError, StreamingError
from edgernn.limits import DECODE_BUDGET, MAX_BEAM, MAX_TOKENS
from edgernn.runtime.engine import Engine


@dataclass
class Translation:
    text: str
    tokens: list[int]
    score: float                  # log-probability per output token (end token included)
    log_prob: float               # total log-probability
    finished: bool = True         # ended with the end token (not cut at max_len)
    hypotheses: list = field(default_factory=list)   # n-best Translations, best first

    def to_dict(self) -> dict:
        return {"output": self.text, "score": round(self.score, 6),
                "log_prob": round(self.log_prob, 6), "finished": self.finished}


class Seq2SeqModel:
    def __init__(self, encoder, decoder):
        self.encoder, self.decoder = encoder, decoder
        spec = encoder.contract.seq2seq
        self.spec = spec
        self.source, self.target, self.max_len = spec.source, spec.target, spec.max_len
        self.bos, self.eos = self.target.specials["bos"], self.target.specials["eos"]
        self.attention = spec.attention != "none"
        self.state_names = [s.name for s in decoder.states]
        self.source_name = encoder.contract.inputs[0].name
        self.contract = encoder.contract

    def __repr__(self) -> str:
        return (f"Seq2SeqModel({self.encoder.source!r}, attention={self.spec.attention!r}, "
                f"vocabularies {len(self.source)}->{len(self.target)})")

    @property
    def providers(self) -> list[str]:
        return self.decoder.providers

    def stream(self, **_):
        refuse_seq2seq(self, "stream()")

    def pool(self, **_):
        refuse_seq2seq(self, "pool()")

    # ---------------------------------------------------------------- decoding

    def translate(self, source, *, beam: int = 1, max_len: int | None = None,
                  n_best: int = 1) -> Translation:
        """The output for one input (text, or a list of source token ids)."""
        return self.translate_batch([source], beam=beam, max_len=max_len, n_best=n_best)[0]

    def translate_batch(self, sources, *, beam: int = 1, max_len: int | None = None,
                        n_best: int = 1) -> list[Translation]:
        """Outputs for many inputs, decoded together: each equals decoding it alone."""
        beam, max_len, n_best = self._check(beam, max_len, n_best)
        ids = [self._ids(s) for s in sources]
        out: list[Translation] = []
        for group in _groups(ids, beam):                  # memory bounded whatever the batch
            out += self._search(group, beam, max_len, n_best)
        return out

    def _check(self, beam, max_len, n_best):
        if isinstance(beam, bool) or not isinstance(beam, (int, np.integer)) or beam < 1:
            raise ConfigError(f"beam must be a positive int (1 is greedy), got {beam!r}")
        if beam > MAX_BEAM:
            raise ConfigError(f"beam {beam} is above edgernn's limit of {MAX_BEAM} hypotheses; "
                              f"beams past 4-10 rarely change the best output")
        max_len = self.max_len if max_len is None else max_len
        if isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer)) \
                or max_len < 1:
            raise ConfigError(f"max_len must be a positive int, got {max_len!r}")
        if max_len > MAX_TOKENS:
            raise ConfigError(f"max_len {max_len} is above edgernn's limit of {MAX_TOKENS} "
                              f"output tokens")
        if not isinstance(n_best, (int, np.integer)) or not 1 <= n_best <= beam:
            raise ConfigError(f"n_best must be between 1 and the beam ({beam}), got {n_best!r}")
        return int(beam), int(max_len), int(n_best)

    def _ids(self, source) -> list[int]:
        if isinstance(source, str):
            if not self.source.tokenize(source):
                raise DataError("an input has no tokens; pass some text")
            ids = self.source.encode(source)
        else:
            try:
                ids = [int(i) for i in source]
            except (TypeError, ValueError):
                raise DataError(f"an input is text or a list of token ids, got "
                                f"{type(source).__name__}") from None
            if any(not 0 <= i < len(self.source) for i in ids):
                raise DataError(f"source token ids run from 0 to {len(self.source) - 1}")
        if not ids:
            raise DataError("an input has no tokens; pass some text")
        if len(ids) > MAX_TOKENS:
            raise DataError(f"an input has {len(ids):,} tokens; edgernn decodes at most "
                            f"{MAX_TOKENS:,} at a time: split it (by sentence, say) and "
                            f"translate the parts")
        return ids

    def _encode(self, ids: list[int]):
        session = self.encoder.session
        names = [o.name for o in session.get_outputs()]
        outs = dict(zip(names, session.run(None, {self.source_name: np.array([ids],
                                                                              np.int64)})))
        return outs

    def _search(self, sources: list[list[int]], k: int, max_len: int, n_best: int):
        N, rows = len(sources), len(sources) * k
        encoded = [self._encode(ids) for ids in sources]
        extra = {}
        if self.attention:
            S = max(len(ids) for ids in sources)
            extra["memory"] = np.repeat(_padded([e["memory"] for e in encoded], S), k, 0)
            extra["keys"] = np.repeat(_padded([e["keys"] for e in encoded], S), k, 0)
            mask = np.zeros((N, S), np.float32)
            for n, ids in enumerate(sources):
                mask[n, :len(ids)] = 1.0
            extra["mask"] = np.repeat(mask, k, 0)
        engine = Engine(self.decoder, rows, device="cpu")
        engine.set_state({name: np.repeat(np.concatenate([e[name] for e in encoded]), k, 0)
                          for name in self.state_names})
        prev = np.full(rows, self.bos, np.int64)
        scores = np.full((N, k), -np.inf)
        scores[:, 0] = 0.0                                    # one live hypothesis to start
        history = [[[] for _ in range(k)] for _ in range(N)]
        finished = [[] for _ in range(N)]
        done = np.zeros(N, bool)
        for _ in range(max_len):
            logp = engine.run(prev, extra=extra).astype(np.float64)   # (rows, V)
            V = logp.shape[1]
            flat = (scores[:, :, None] + logp.reshape(N, k, V)).reshape(N, k * V)
            parents = np.arange(rows)
            for n in range(N):
                if done[n]:
                    continue
                live = []
                for rank, idx in enumerate(_best(flat[n], 2 * k)):
                    total = flat[n, idx]
                    if not np.isfinite(total):
                        break
                    parent, token = divmod(int(idx), V)
                    if token == self.eos:
                        if rank < k:              # an end ranked past the beam is not taken
                            finished[n].append((history[n][parent], float(total), True))
                    else:
                        live.append((parent, token, float(total)))
                    if len(live) == k:
                        break
                finished[n] = _kept(finished[n], k)
                if not live or _settled(finished[n], live, history[n], k):
                    done[n] = True
                    continue
                new_history = []
                for j in range(k):
                    if j < len(live):
                        parent, token, total = live[j]
                        parents[n * k + j] = n * k + parent
                        prev[n * k + j] = token
                        scores[n, j] = total
                        new_history.append(history[n][parent] + [token])
                    else:
                        scores[n, j] = -np.inf
                        new_history.append([])
                history[n] = new_history
            if done.all():
                break
            engine.reorder(np.arange(rows), parents)
        results = []
        for n in range(N):
            hyps = list(finished[n])
            if not done[n]:                                   # cut at max_len: unfinished
                hyps += [(history[n][j], float(scores[n, j]), False) for j in range(k)
                         if np.isfinite(scores[n, j])]
            # an output the model ended comes before one cut at max_len, whatever its score
            ranked = sorted((self._translation(t, lp, end) for t, lp, end in hyps),
                            key=lambda h: (not h.finished, -h.score))
            best = ranked[0]
            best.hypotheses = ranked[:n_best]
            results.append(best)
        return results

    def _translation(self, tokens, log_prob, finished) -> Translation:
        length = len(tokens) + (1 if finished else 0)
        return Translation(self.target.decode(tokens), list(tokens),
                           scored(log_prob, length), log_prob, finished)


def refuse_seq2seq(model, what: str) -> None:
    """One clear error where a streaming model is needed and ``model`` is an encoder-decoder."""
    if isinstance(model, Seq2SeqModel):
        raise StreamingError(f"{model.encoder.source} is an encoder-decoder (seq2seq) model: it "
                             f"decodes whole inputs, it does not stream frames, so {what} does "
                             f"not take it. Decode with model.translate() or 'edgernn run "
                             f"MODEL texts.txt'")


def scored(log_prob: float, length: int) -> float:
    """A hypothesis's score: its log-probability per output token (end token counted). A
    weaker length penalty (GNMT's length ** 0.6-0.8) measured no better on number words: it
    won on some models and lost more on an under-trained one that loops."""
    return log_prob / max(1, length)


def _norm(tokens: list, log_prob: float) -> float:
    """A finished hypothesis's score."""
    return scored(log_prob, len(tokens) + 1)


def _kept(finished: list, k: int) -> list:
    """The ``k`` best finished hypotheses by score, ties in the order they finished."""
    order = sorted(range(len(finished)), key=lambda i: (-_norm(*finished[i][:2]), i))
    return [finished[i] for i in order[:k]]


def _settled(finished: list, live: list, history: list, k: int) -> bool:
    """Whether the search can stop: ``k`` hypotheses have ended, and none still live would
    score above the worst of them if it ended on its next token (its log-probability only
    falls from here; a length-normalised score may still rise, so this is the usual estimate,
    not a bound). Stopping at the first ``k`` ends, however poor, kept truncated outputs of
    an under-trained model over the right, longer one, and lost to greedy on number words
    (tests/exporters/test_beam.py). One hypothesis (greedy) ends when its best next token is
    the end."""
    if len(finished) < k:
        return False
    if k == 1:
        return True
    worst = _norm(*finished[-1][:2])
    return all(scored(total, len(history[parent]) + 2) <= worst for parent, _, total in live)


def _best(scores: np.ndarray, m: int) -> np.ndarray:
    """The indices of the ``m`` largest scores, largest first, ties in index order: what a stable
    sort of all of them gives, in time linear in their number."""
    scores = np.where(np.isnan(scores), -np.inf, scores)  # NaN last, as a sort puts it
    if m >= scores.size:
        return np.argsort(-scores, kind="stable")
    cut = np.partition(scores, scores.size - m)[scores.size - m]
    top = np.flatnonzero(scores >= cut)                   # m or more, with ties at the cut
    return top[np.argsort(-scores[top], kind="stable")][:m]


def _groups(ids: list[list[int]], beam: int):
    """The inputs in order, in groups whose hypotheses x longest input stay within
    DECODE_BUDGET (a group holds at least one input)."""
    group: list[list[int]] = []
    longest = 0
    for one in ids:
        if group and (len(group) + 1) * beam * max(longest, len(one)) > DECODE_BUDGET:
            yield group
            group, longest = [], 0
        group.append(one)
        longest = max(longest, len(one))
    if group:
        yield group


def _padded(arrays: list[np.ndarray], length: int) -> np.ndarray:
    """(1, S_i, D) arrays to one (N, length, D), zeros after each one's end."""
    out = np.zeros((len(arrays), length, arrays[0].shape[-1]), arrays[0].dtype)
    for n, a in enumerate(arrays):
        out[n, :a.shape[1]] = a[0]
    return out


def open_pair(loaded, path: Path | None, load_partner) -> Seq2SeqModel:
    """The pair ``loaded`` (either file) belongs to: its partner is loaded from beside it and
    must carry the same weights hash and the other role."""
    spec = loaded.contract.seq2seq
    if path is None:
        raise ModelError("an encoder-decoder model is two files; load it from its path (the "
                         "partner file is found beside it), not from bytes")
    partner_path = Path(path).parent / spec.partner
    if not partner_path.is_file():
        raise ModelError(f"{path} is the {spec.role} of an encoder-decoder model; its "
                         f"{'decoder' if spec.role == 'encoder' else 'encoder'} "
                         f"{partner_path.name} is not beside it. Keep the two files together")
    partner = load_partner(partner_path)
    other = partner.contract.seq2seq
    if other is None or other.role == spec.role or (
            partner.contract.provenance.weights_sha256
            != loaded.contract.provenance.weights_sha256):
        raise ModelError(f"{partner_path} is not the partner of {path} (another model's "
                         f"{other.role if other else 'file'}); export the pair again")
    encoder, decoder = (loaded, partner) if spec.role == "encoder" else (partner, loaded)
    return Seq2SeqModel(encoder, decoder)
