"""The encoder-decoder network, its training and its checkpoint (host side: needs torch).

The encoder (GRU, LSTM or RNN; stacked; bidirectional allowed, it sees the whole input) turns
the source ids into a memory, one vector per source token; a bridge makes the decoder's first
state from the encoder's last. The decoder is a step function: previous token, state, memory,
attention keys and mask in; log-probabilities, next state and attention weights out. Attention
is Luong's (general: scores ``h . W m``) or Bahdanau's (additive: ``v . tanh(W m + U h)``), or
none (the classic hand-over of the last state, as g2p-en's published model does).

``step`` is written once and used for training (teacher forcing), for the exported decoder
graph and for the reference decoding the export is checked against, token for token.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from edgernn.cells import family
from edgernn.deps import require
from edgernn.errors import CheckpointError, ConfigError
from edgernn.progress import log
from edgernn.vocab import ATTENTIONS, Vocabulary

torch = require("torch", "training a seq2seq model")
nn = torch.nn

BRIDGES = ("linear", "none")
FORMAT = 1


@dataclass(frozen=True)
class Seq2SeqConfig:
    source_size: int
    target_size: int
    cell: str = "gru"
    hidden_size: int = 128
    num_layers: int = 1
    embedding_dim: int = 64
    bidirectional: bool = True
    attention: str = "luong"
    bridge: str = "linear"          # "none": the encoder's last state is the decoder's first
    dropout: float = 0.0

    def __post_init__(self):
        family(self.cell)
        if self.attention not in ATTENTIONS:
            raise ConfigError(f"attention {self.attention!r} is unknown; expected "
                              f"{', '.join(ATTENTIONS)}")
        if self.bridge not in BRIDGES:
            raise ConfigError(f"bridge {self.bridge!r} is unknown; expected linear or none")
        if self.bridge == "none" and self.bidirectional:
            raise ConfigError("bridge 'none' hands the encoder's last state over as it is; a "
                              "bidirectional encoder needs bridge 'linear'")
        for name in ("source_size", "target_size", "hidden_size", "num_layers", "embedding_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def replace(self, **changes) -> "Seq2SeqConfig":
        return Seq2SeqConfig(**{**asdict(self), **changes})

    @classmethod
    def from_dict(cls, d: dict) -> "Seq2SeqConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


class Seq2Seq(nn.Module):
    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        c = self.config = config
        fam = self.family = family(c.cell)
        rnn, cell = getattr(nn, fam.torch_module), getattr(nn, fam.torch_module + "Cell")
        extra = fam.torch_kwargs()
        self.enc_emb = nn.Embedding(c.source_size, c.embedding_dim)
        self.encoder = rnn(c.embedding_dim, c.hidden_size, c.num_layers, batch_first=True,
                           bidirectional=c.bidirectional, **extra,
                           dropout=c.dropout if c.num_layers > 1 else 0.0)
        self.memory_size = c.hidden_size * c.directions
        self.dec_emb = nn.Embedding(c.target_size, c.embedding_dim)
        self.cells = nn.ModuleList(cell(c.embedding_dim if i == 0 else c.hidden_size,
                                        c.hidden_size, **extra) for i in range(c.num_layers))
        self.bridge = (nn.ModuleList(nn.Linear(self.memory_size, c.hidden_size)
                                     for _ in fam.states) if c.bridge == "linear" else None)
        if c.attention != "none":
            self.att_w = nn.Linear(self.memory_size, c.hidden_size, bias=False)
            self.combine = nn.Linear(c.hidden_size + self.memory_size, c.hidden_size)
        if c.attention == "bahdanau":
            self.att_q = nn.Linear(c.hidden_size, c.hidden_size)
            self.att_v = nn.Linear(c.hidden_size, 1, bias=False)
        self.out = nn.Linear(c.hidden_size, c.target_size)
        self.drop = nn.Dropout(c.dropout)

    # ---------------------------------------------------------------- encoder

    def encode(self, src, lengths=None):
        """``src`` (B, S) ids, padded when ``lengths`` (B,) is given: memory (B, S, M),
        attention keys (B, S, H) and the decoder's first state, a tuple of (B, layers, H)."""
        emb = self.enc_emb(src)
        if lengths is not None:
            packed = nn.utils.rnn.pack_padded_sequence(emb, lengths.cpu(), batch_first=True,
                                                       enforce_sorted=False)
            out, last = self.encoder(packed)
            memory, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True,
                                                         total_length=src.shape[1])
        else:
            memory, last = self.encoder(emb)
        c = self.config
        states = []
        for k, s in enumerate(self.family.unpack_state(last)):       # (L*D, B, H)
            s = s.reshape(c.num_layers, c.directions, s.shape[1], c.hidden_size)
            s = s.permute(2, 0, 1, 3).reshape(s.shape[2], c.num_layers, self.memory_size)
            states.append(torch.tanh(self.bridge[k](s)) if self.bridge is not None else s)
        keys = self.att_w(memory) if c.attention != "none" else memory
        return memory, keys, tuple(states)

    # ---------------------------------------------------------------- decoder step

    def step(self, prev, states, memory, keys, mask):
        """One decoder step: ``prev`` (B,) ids, ``states`` a tuple of (B, layers, H), ``mask``
        (B, S) 1 for source tokens and 0 for padding. Returns log-probabilities (B, V), the
        next states and the attention weights (B, S)."""
        x = self.dec_emb(prev)
        new = [[] for _ in self.family.states]
        for i, cell in enumerate(self.cells):
            layer = tuple(s[:, i] for s in states)
            out = self.family.unpack_state(cell(x, self.family.pack_state(layer)))
            for k, v in enumerate(out):
                new[k].append(v)
            x = self.drop(out[0]) if i + 1 < len(self.cells) else out[0]
        states = tuple(torch.stack(v, 1) for v in new)
        if self.config.attention == "none":
            attn = mask
            top = x
        else:
            if self.config.attention == "luong":
                scores = torch.bmm(keys, x.unsqueeze(2)).squeeze(2)
            else:
                scores = self.att_v(torch.tanh(keys + self.att_q(x).unsqueeze(1))).squeeze(2)
            attn = torch.softmax(scores + (mask - 1.0) * 1e9, dim=-1)
            context = torch.bmm(attn.unsqueeze(1), memory).squeeze(1)
            top = torch.tanh(self.combine(torch.cat([x, context], -1)))
        return torch.log_softmax(self.out(self.drop(top)), -1), states, attn

    def forward(self, src, lengths, tgt_in):
        """Teacher forcing: log-probabilities (B, T, V) of each next target token."""
        memory, keys, states = self.encode(src, lengths)
        mask = (torch.arange(src.shape[1])[None] < lengths[:, None]).float()
        outs = []
        for t in range(tgt_in.shape[1]):
            logp, states, _ = self.step(tgt_in[:, t], states, memory, keys, mask)
            outs.append(logp)
        return torch.stack(outs, 1)

    @torch.no_grad()
    def greedy(self, ids: list[int], bos: int, eos: int, max_len: int):
        """Greedy decoding of one source in eager PyTorch: the reference the exported graphs
        are checked against. Returns the target ids (without the end token) and their
        log-probabilities at each step."""
        src = torch.tensor([ids])
        memory, keys, states = self.encode(src)
        mask = torch.ones(1, len(ids))
        prev, out, logps = torch.tensor([bos]), [], []
        for _ in range(max_len):
            logp, states, _ = self.step(prev, states, memory, keys, mask)
            logps.append(logp[0].numpy())
            token = int(torch.argmax(logp[0]))
            if token == eos:
                break
            out.append(token)
            prev = torch.tensor([token])
        return out, logps


# ---------------------------------------------------------------- training

@dataclass
class Seq2SeqResult:
    model: Seq2Seq
    source: Vocabulary
    target: Vocabulary
    max_len: int
    dataset: object
    history: list = field(default_factory=list)
    test: dict = field(default_factory=dict)         # exact match, token error rate
    seconds: float = 0.0
    stop_reason: str = ""

    def summary(self) -> dict:
        c = self.model.config
        return {"task": "seq2seq", "model": asdict(c), "test": self.test,
                "epochs": len(self.history), "stopped": self.stop_reason,
                "seconds": round(self.seconds, 2), "data": self.dataset.describe()}

    def save(self, path):
        return save_checkpoint(path, self.model, self.source, self.target, self.max_len,
                               self.dataset, self.test)


def _batch(pairs, idx, source: Vocabulary, target: Vocabulary):
    src = [source.encode(pairs.sources[i]) for i in idx]
    tgt = [target.encode(pairs.targets[i]) for i in idx]
    pad_s, pad_t = source.specials["pad"], target.specials["pad"]
    bos, eos = target.specials["bos"], target.specials["eos"]
    S, T = max(map(len, src)), max(map(len, tgt)) + 1
    x = torch.full((len(idx), S), pad_s, dtype=torch.long)
    y_in = torch.full((len(idx), T), pad_t, dtype=torch.long)
    y_out = torch.full((len(idx), T), pad_t, dtype=torch.long)
    for j, (s, t) in enumerate(zip(src, tgt)):
        x[j, :len(s)] = torch.tensor(s)
        y_in[j, :len(t) + 1] = torch.tensor([bos] + t)
        y_out[j, :len(t) + 1] = torch.tensor(t + [eos])
    return x, torch.tensor([len(s) for s in src]), y_in, y_out


def _loss(model, pairs, idx, source, target):
    x, lengths, y_in, y_out = _batch(pairs, idx, source, target)
    logp = model(x, lengths, y_in)
    return nn.functional.nll_loss(logp.reshape(-1, logp.shape[-1]), y_out.reshape(-1),
                                  ignore_index=target.specials["pad"])


def decode_all(model: Seq2Seq, pairs, source: Vocabulary, target: Vocabulary,
               max_len: int) -> list[str]:
    model.eval()
    bos, eos = target.specials["bos"], target.specials["eos"]
    return [target.decode(model.greedy(source.encode(s), bos, eos, max_len)[0])
            for s in pairs.sources]


def fit(data, config: Seq2SeqConfig, *, epochs: int = 30, batch_size: int = 64,
        lr: float = 3e-3, patience: int = 4, min_delta: float = 1e-4, warmup_steps: int = 20,
        time_budget: float | None = None, seed: int = 0, clip_norm: float = 1.0,
        verbose: bool = True) -> Seq2SeqResult:
    """Train on ``data`` (:class:`~edgernn.tasks.seq2seq.Seq2SeqData`) with teacher forcing,
    keeping the epoch of lowest validation loss (better by ``min_delta``; ``patience`` epochs
    without one stop it, as does ``time_budget`` seconds), the learning rate warmed up linearly
    over ``warmup_steps``; score the test split by greedy decoding."""
    from edgernn.tasks.seq2seq import scores

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Seq2Seq(config)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: min(1.0, (step + 1) / max(1, warmup_steps)))
    longest = max(len(data.target_vocab.encode(t)) for t in data.train.targets)
    max_len = int(math.ceil(longest * 1.5)) + 2
    result = Seq2SeqResult(model, data.source_vocab, data.target_vocab, max_len, data.ref)
    start, best, best_state, stale = time.perf_counter(), math.inf, None, 0
    log(f"training seq2seq {config.cell} {config.hidden_size}x{config.num_layers}"
        f"{' bidirectional' if config.bidirectional else ''}, attention {config.attention}, "
        f"on {data.ref.describe()} ({len(data.train)} train / {len(data.val)} val pairs)",
        verbose)
    for epoch in range(1, epochs + 1):
        model.train()
        order = rng.permutation(len(data.train))
        losses = []
        for b in range(0, len(order), batch_size):
            loss = _loss(model, data.train, order[b:b + batch_size], data.source_vocab,
                         data.target_vocab)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
            opt.step()
            sched.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            val = float(np.mean([_loss(model, data.val, np.arange(len(data.val))[b:b + 256],
                                       data.source_vocab, data.target_vocab).item()
                                 for b in range(0, len(data.val), 256)]))
        result.history.append({"epoch": epoch, "train_loss": float(np.mean(losses)),
                               "val_loss": val})
        log(f"epoch {epoch:3d}/{epochs} loss {np.mean(losses):.4f} val {val:.4f}", verbose)
        if val < best - min_delta:
            best, stale = val, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if stale >= patience:
                result.stop_reason = f"early stop: no better validation loss in {patience} epochs"
                break
        if time_budget and time.perf_counter() - start >= time_budget:
            result.stop_reason = f"time budget of {time_budget:g} s"
            break
    result.stop_reason = result.stop_reason or f"{epochs} epochs"
    model.load_state_dict(best_state)
    model.eval()
    hyp = decode_all(model, data.test, data.source_vocab, data.target_vocab, max_len)
    result.test = scores(hyp, data.test.targets, data.target_vocab)
    result.seconds = time.perf_counter() - start
    return result


# ---------------------------------------------------------------- checkpoint

def save_checkpoint(path, model: Seq2Seq, source: Vocabulary, target: Vocabulary, max_len: int,
                    dataset=None, test: dict | None = None):
    from pathlib import Path

    from edgernn.checkpoint import save_torch

    save_torch({"kind": "seq2seq", "format": FORMAT, "config": asdict(model.config),
                "state_dict": model.state_dict(), "source": source.to_dict(),
                "target": target.to_dict(), "max_len": int(max_len),
                "dataset": asdict(dataset) if dataset is not None else None,
                "test": dict(test or {})}, path)
    return Path(path)


@dataclass
class Seq2SeqCheckpoint:
    model: Seq2Seq
    source: Vocabulary
    target: Vocabulary
    max_len: int
    dataset: dict | None
    test: dict


def is_seq2seq_checkpoint(payload) -> bool:
    return isinstance(payload, dict) and payload.get("kind") == "seq2seq"


def from_payload(payload: dict, where: str) -> Seq2SeqCheckpoint:
    if payload.get("format", 0) > FORMAT:
        raise CheckpointError(f"{where} is a seq2seq checkpoint from a newer edgernn; upgrade")
    try:
        model = Seq2Seq(Seq2SeqConfig.from_dict(payload["config"]))
        model.load_state_dict(payload["state_dict"])
        return Seq2SeqCheckpoint(model.eval(), Vocabulary.from_dict(payload["source"]),
                                 Vocabulary.from_dict(payload["target"]),
                                 int(payload["max_len"]), payload.get("dataset"),
                                 payload.get("test") or {})
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{where} is not a complete seq2seq checkpoint ({exc})") from None
