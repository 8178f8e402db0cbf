"""An encoder-decoder model to ONNX: two files that a device loads with one ``load()``.

``model.onnx`` is the encoder (a sequence graph: source ids ``src`` (1, S) -> ``memory``,
``keys`` and the decoder's first state), ``model.decoder.onnx`` the step decoder (``prev``
token, state, ``memory``, ``keys``, ``mask`` -> ``logp``, next state, ``attn``). Each carries
the whole contract: vocabularies with their special ids, maximum output length, attention and
state layout, and names the other. Two files and not one because ONNX Runtime runs one graph
per session, and the decoder runs many times per encoder run, in batches of beams.

Before anything is written, both graphs run in ONNX Runtime through edgernn's own decoding loop
and must give PyTorch's greedy output token for token, with log-probabilities within the
tolerance, on held-out sources.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from edgernn import __version__
from edgernn.checkpoint import weights_sha256
from edgernn.choices import DEFAULT_OPSET, EXPORT_TOLERANCE
from edgernn.contract import Contract, DataRef, Parity, Provenance, StateSpec, TensorSpec
from edgernn.errors import ExportError
from edgernn.exporters.artifact import embed_contract
from edgernn.files import atomic_write_bytes
from edgernn.vocab import Seq2SeqSpec


def decoder_path(path: str | Path) -> Path:
    """Where the decoder of encoder file ``path`` goes: ``model.onnx`` -> ``model.decoder.onnx``."""
    path = Path(path)
    return path.with_name(path.name.removesuffix(".onnx") + ".decoder.onnx")


class _Encoder(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.m = model

    def forward(self, src):
        memory, keys, states = self.m.encode(src)
        if self.m.config.attention == "none":
            return states
        return (memory, keys, *states)


class _Decoder(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.m = model
        self.n = len(model.family.states)

    def forward(self, prev, *rest):
        states = rest[:self.n]
        if self.m.config.attention == "none":
            logp, new, _ = self.m.step(prev, states, None, None, None)
            return (logp, *new)
        memory, keys, mask = rest[self.n:]
        logp, new, attn = self.m.step(prev, states, memory, keys, mask)
        return (logp, *new, attn)


@dataclass
class Seq2SeqExport:
    encoder: Path
    decoder: Path
    tokens_equal: int
    sources: int
    max_logp_error: float
    bytes: int

    def to_dict(self) -> dict:
        return {"encoder": str(self.encoder), "decoder": str(self.decoder),
                "parity": {"sources": self.sources, "tokens_equal": self.tokens_equal,
                           "max_logp_error": self.max_logp_error}, "bytes": self.bytes}


def export_seq2seq(ckpt, out_path: str | Path, *, opset: int = DEFAULT_OPSET,
                   tolerance: float = EXPORT_TOLERANCE, sources: list[str] | None = None
                   ) -> Seq2SeqExport:
    """Write the encoder to ``out_path`` and the decoder beside it (see :func:`decoder_path`),
    from a :class:`~edgernn.seq2seq.Seq2SeqCheckpoint`, after the parity check."""
    model, cfg = ckpt.model.eval(), ckpt.model.config
    out_path = Path(out_path)
    dec_path = decoder_path(out_path)
    names = list(model.family.states)
    attention = cfg.attention != "none"
    L, H, M = cfg.num_layers, cfg.hidden_size, model.memory_size
    batch_state = [StateSpec(n, n, f"{n}_out", ["batch", L, H], ["batch", "layers", "hidden"])
                   for n in names]
    sha = weights_sha256(model.state_dict())
    prov = Provenance(edgernn_version=__version__, torch_version=torch.__version__, opset=opset,
                      exporter="torchscript/seq2seq", weights_sha256=sha)
    spec = dict(source=ckpt.source, target=ckpt.target, max_len=ckpt.max_len,
                attention=cfg.attention)
    ds = DataRef.from_dict(ckpt.dataset, "dataset") if ckpt.dataset else None
    model_facts = {"cell": cfg.cell, "hidden_size": H, "num_layers": L,
                   "bidirectional": cfg.bidirectional, "attention": cfg.attention}

    enc_out = (["memory", "keys"] if attention else []) + names
    src = torch.tensor([[ckpt.source.specials.get("eos", 0)] * 3])
    enc_axes = {"src": {0: "batch", 1: "source"}, **{n: {0: "batch"} for n in names}}
    if attention:
        enc_axes.update(memory={0: "batch", 1: "source"}, keys={0: "batch", 1: "source"})
    encoder = _export(_Encoder(model), (src,), ["src"], enc_out, enc_axes, opset)
    enc_contract = Contract(
        graph="sequence", task="seq2seq", model=model_facts, provenance=prov, dataset=ds,
        inputs=[TensorSpec("src", ["batch", "source"], "int64", "source token ids")],
        outputs=([TensorSpec("memory", ["batch", "source", M]),
                  TensorSpec("keys", ["batch", "source", H])] if attention else [])
        + [TensorSpec(n, ["batch", L, H], meaning="the decoder's first state") for n in names],
        states=[], seq2seq=Seq2SeqSpec(role="encoder", partner=dec_path.name, **spec))

    with torch.no_grad():
        memory, keys, states = model.encode(src)
    B = 2
    prev = torch.zeros(B, dtype=torch.long)
    dec_args = (prev, *(s.expand(B, L, H).contiguous() for s in states))
    dec_in = ["prev"] + names
    dec_axes = {"prev": {0: "batch"}, "logp": {0: "batch"},
                **{n: {0: "batch"} for n in names}, **{f"{n}_out": {0: "batch"} for n in names}}
    if attention:
        dec_args += (memory.expand(B, -1, -1).contiguous(), keys.expand(B, -1, -1).contiguous(),
                     torch.ones(B, src.shape[1]))
        dec_in += ["memory", "keys", "mask"]
        for n in ("memory", "keys", "mask", "attn"):
            dec_axes[n] = {0: "batch", 1: "source"}
    dec_out = ["logp"] + [f"{n}_out" for n in names] + (["attn"] if attention else [])
    decoder = _export(_Decoder(model), dec_args, dec_in, dec_out, dec_axes, opset)
    V = cfg.target_size
    dec_contract = Contract(
        graph="step", task="seq2seq", model=model_facts, provenance=prov, dataset=ds,
        inputs=[TensorSpec("prev", ["batch"], "int64", "the previous target token")]
        + ([TensorSpec("memory", ["batch", "source", M]),
            TensorSpec("keys", ["batch", "source", H]),
            TensorSpec("mask", ["batch", "source"], meaning="1 for source tokens, 0 padding")]
           if attention else []),
        outputs=[TensorSpec("logp", ["batch", V], meaning="log-probabilities of the next token")]
        + ([TensorSpec("attn", ["batch", "source"])] if attention else []),
        states=batch_state, seq2seq=Seq2SeqSpec(role="decoder", partner=out_path.name, **spec))

    sources = sources or _held_out(ckpt)
    with tempfile.TemporaryDirectory(prefix="edgernn-s2s-") as tmp:
        tmp_enc = Path(tmp) / out_path.name
        tmp_dec = Path(tmp) / dec_path.name
        parity_of = {}
        for proto, contract, path in ((encoder, enc_contract, tmp_enc),
                                      (decoder, dec_contract, tmp_dec)):
            embed_contract(proto, contract)
            path.write_bytes(proto.SerializeToString(deterministic=True))
        equal, worst = _parity(ckpt, tmp_enc, sources)
        if equal < len(sources) or worst > tolerance * ckpt.max_len:
            raise ExportError(f"the exported graphs decode {len(sources) - equal} of "
                              f"{len(sources)} held-out sources differently from PyTorch (worst "
                              f"score error {worst:.3g}); nothing was written")
        parity = Parity(reference="torch", metric="greedy tokens equal; max |score - torch|",
                        tolerance=tolerance * ckpt.max_len, measured=worst,
                        data=f"{len(sources)} held-out sources",
                        details={"tokens_equal": equal, "sources": len(sources)})
        for proto, contract, path in ((encoder, enc_contract, out_path),
                                      (decoder, dec_contract, dec_path)):
            embed_contract(proto, contract.with_changes(parity=[parity]))
            data = proto.SerializeToString(deterministic=True)
            parity_of[path] = len(data)
            atomic_write_bytes(path, data)
    return Seq2SeqExport(out_path, dec_path, equal, len(sources), worst,
                         sum(parity_of.values()))


def _export(module, args, inputs, outputs, axes, opset) -> onnx.ModelProto:
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, buf, input_names=inputs, output_names=outputs,
                              dynamic_axes=axes, opset_version=opset, dynamo=False)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ExportError(f"torch could not export the seq2seq model: {first}") from None
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _held_out(ckpt, n: int = 40) -> list[str]:
    """Sources to check on: the recorded data's test split when it can be had, else seeded
    random strings of the source vocabulary."""
    ds = ckpt.dataset or {}
    if ds.get("kind") == "builtin" and ds.get("name") == "dates":
        from edgernn.tasks.seq2seq import dates, split_pairs

        pairs = dates(int(ds.get("sequences") or 200), int(ds.get("seed") or 0))
        return split_pairs(pairs, int(ds.get("seed") or 0))[2].sources[:n]
    if ds.get("kind") == "file" and ds.get("path") and Path(ds["path"]).is_file():
        from edgernn.tasks.seq2seq import read_pairs, split_pairs

        return split_pairs(read_pairs(ds["path"]), 0)[2].sources[:n]
    vocab = ckpt.source
    plain = [t for i, t in enumerate(vocab.tokens) if i not in set(vocab.specials.values())]
    rng = np.random.default_rng(0)
    sep = "" if vocab.split == "chars" else " "
    return [sep.join(rng.choice(plain, int(rng.integers(2, 12)))) for _ in range(n)]


def _parity(ckpt, enc_path: Path, sources: list[str]) -> tuple[int, float]:
    """Greedy decoding through ONNX Runtime (edgernn's runtime) against PyTorch eager: how many
    sources give the same tokens, and the worst difference in total log-probability."""
    from edgernn.runtime import load

    pair = load(enc_path, threads=1)
    bos, eos = ckpt.target.specials["bos"], ckpt.target.specials["eos"]
    equal, worst = 0, 0.0
    for text in sources:
        ids = ckpt.source.encode(text)
        want, logps = ckpt.model.greedy(ids, bos, eos, ckpt.max_len)
        got = pair.translate(text, beam=1)
        tokens = list(want) + ([eos] if len(want) < ckpt.max_len else [])
        score = float(sum(lp[t] for lp, t in zip(logps, tokens)))
        equal += got.tokens == list(want)
        worst = max(worst, abs(got.log_prob - score))
    return equal, worst
