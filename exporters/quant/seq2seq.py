"""int8 for an encoder-decoder pair, behind a gate on the model's own held-out pairs.

Both graphs get edgernn's row-independent int8 (:mod:`.int8`): every product with constant
weights, after the decoder's fused cells are written out as products (:mod:`..forms.lower`).
The encoder's recurrent layers stay fused and fp32: lowering writes out one step, and a fused
encoder layer runs over the whole input (the encoder runs once per input, the decoder once per
output token and hypothesis, so the decoder is where the time goes). Beams stay rows that do
not interact.

The gate decodes the held-out split (the data the model was trained on, or ``data=``) with the
fp32 pair and the int8 pair, greedy, and compares exact match item by item with the rule the
classifiers use: worse by at most ``max_drop`` plus two standard errors of the paired
difference. Token error rates are reported beside it. A pair that fails is not written.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import onnx

from edgernn.choices import quantized_path
from edgernn.contract import Parity
from edgernn.errors import ConfigError, DataError, ParityError
from edgernn.exporters.artifact import contract_in, embed_contract, read_proto
from edgernn.exporters.forms.lower import RECURRENT, lower
from edgernn.exporters.from_torch.seq2seq import decoder_path
from edgernn.exporters.quant.int8 import rewrite
from edgernn.exporters.quant.qgraph import coverage
from edgernn.files import atomic_write_bytes
from edgernn.progress import stage
from edgernn.tasks.compare import MetricCheck, paired_check

DEFAULT_MAX_DROP = 0.01           # one point of exact match, as classification's accuracy


@dataclass
class PairQuantizeReport:
    encoder: str
    decoder: str
    check: MetricCheck
    token_error_fp32: float
    token_error_int8: float
    changed: int
    bytes_fp32: int
    bytes_int8: int
    mac_share: dict = field(default_factory=dict)     # graph -> share of products in int8
    notes: list = field(default_factory=list)
    passed: bool = False

    @property
    def size_ratio(self) -> float:
        return self.bytes_int8 / self.bytes_fp32

    def to_dict(self) -> dict:
        return {"encoder": self.encoder, "decoder": self.decoder, "passed": self.passed,
                "exact_match": self.check.to_dict(), "token_error_rate": {
                    "fp32": self.token_error_fp32, "int8": self.token_error_int8},
                "changed_outputs": self.changed, "bytes": {"fp32": self.bytes_fp32,
                                                           "int8": self.bytes_int8},
                "size_ratio": self.size_ratio, "mac_share_int8": self.mac_share,
                "notes": self.notes}


def quantize_pair(path, out_path=None, *, data=None, max_drop: float | None = None,
                  force: bool = False) -> PairQuantizeReport:
    """The int8 pair of encoder-or-decoder file ``path``, written to ``out_path`` (default:
    ``model.int8.onnx``, decoder beside it) if it passes the gate (or ``force``)."""
    from edgernn.runtime import load

    pair = load(path)
    enc_path = Path(pair.encoder.source)
    dec_path = Path(pair.decoder.source)
    out_path = Path(out_path) if out_path is not None else quantized_path(enc_path, "dynamic")
    out_dec = decoder_path(out_path)
    if pair.contract.quantization is not None:
        raise ConfigError(f"{enc_path} is already quantized; quantize the fp32 pair")
    test = held_out(pair, data)
    notes, shares, written = [], {}, {}
    with tempfile.TemporaryDirectory(prefix="edgernn-s2s-q-") as tmp:
        for src, dst, role in ((enc_path, Path(tmp) / out_path.name, "encoder"),
                               (dec_path, Path(tmp) / out_dec.name, "decoder")):
            proto = read_proto(src)
            contract = contract_in(proto, str(src))
            if role == "decoder":
                low, kept = lower(proto)
                notes += [f"decoder: {n}; it stays fp32" for n in kept]
            else:
                low = proto
                fused = [n.op_type for n in proto.graph.node if n.op_type in RECURRENT]
                if fused:
                    notes.append(f"encoder: its {len(fused)} fused recurrent layer(s) run over "
                                 f"the whole input and stay fp32; its other products are int8")
            q, plan = rewrite(low, contract, mode="dynamic", inputs="int8", recurrent="int8")
            cov = coverage(proto, q, "dynamic", "", {"products": plan.kinds})
            shares[role] = cov.mac_share_int8
            partner = out_dec.name if role == "encoder" else out_path.name
            contract = contract.with_changes(
                quantization=cov, seq2seq=replace(contract.seq2seq, partner=partner))
            embed_contract(q, contract)
            written[dst] = (q, contract)
            onnx.save(q, dst)
        stage(f"quantize: decode {len(test[0])} held-out pairs with the fp32 and int8 pairs")
        int8 = load(Path(tmp) / out_path.name)
        report = gate(pair, int8, test, DEFAULT_MAX_DROP if max_drop is None else max_drop)
        report.encoder, report.decoder = str(out_path), str(out_dec)
        report.notes, report.mac_share = notes, shares
        report.bytes_fp32 = enc_path.stat().st_size + dec_path.stat().st_size
        report.bytes_int8 = sum(p.stat().st_size for p in written)
        if not report.passed and not force:
            raise ParityError(f"the int8 pair fails the gate: exact match "
                              f"{report.check.describe()}. Nothing was written; keep the fp32 "
                              f"pair (or --force)", report=report)
        parity = Parity(reference="fp32", metric="exact match drop (greedy)",
                        tolerance=report.check.allowed, measured=report.check.worse_by,
                        data=f"{report.check.items} held-out pairs",
                        details={"exact_match": report.check.value,
                                 "exact_match_fp32": report.check.reference,
                                 "token_error_rate": report.token_error_int8,
                                 "token_error_rate_fp32": report.token_error_fp32,
                                 "changed_outputs": report.changed})
        for (proto, contract), dst in zip(written.values(), (out_path, out_dec)):
            # only what was measured on the int8 pair: the fp32 pair's figures against PyTorch
            # describe other files
            embed_contract(proto, contract.with_changes(parity=[parity]))
            atomic_write_bytes(dst, proto.SerializeToString(deterministic=True))
    return report


def gate(fp32, int8, test, max_drop: float) -> PairQuantizeReport:
    """Greedy outputs of both pairs on the held-out ``test`` (sources, targets), judged."""
    from edgernn.tasks.seq2seq import scores

    sources, targets = test
    a = [t.text for t in fp32.translate_batch(sources)]
    b = [t.text for t in int8.translate_batch(sources)]
    check = paired_check("exact match", [x == y for x, y in zip(a, targets)],
                         [x == y for x, y in zip(b, targets)], True, max_drop,
                         changed=sum(x != y for x, y in zip(a, b)))
    vocab = fp32.target
    report = PairQuantizeReport("", "", check, scores(a, targets, vocab)["token_error_rate"],
                                scores(b, targets, vocab)["token_error_rate"], check.changed,
                                0, 0)
    report.passed = check.passed
    return report


def held_out(pair, data=None) -> tuple[list[str], list[str]]:
    """The test split of the pairs the model was trained on (or of ``data``)."""
    from edgernn.tasks.base import file_sha256
    from edgernn.tasks.seq2seq import load as load_pairs

    ds = pair.contract.dataset
    tokens, target_tokens = pair.source.split, pair.target.split
    if data is not None:
        loaded = load_pairs(data, tokens=tokens, target_tokens=target_tokens,
                            seed=(ds.seed or 0) if ds else 0)
    elif ds is not None and ds.kind == "builtin":
        loaded = load_pairs(None, tokens=tokens, target_tokens=target_tokens, seed=ds.seed or 0,
                            size=ds.size or 1.0)
    elif ds is not None and ds.kind == "file" and Path(ds.path).is_file() \
            and file_sha256(ds.path) == ds.sha256:
        loaded = load_pairs(ds.path, tokens=tokens, target_tokens=target_tokens,
                            seed=ds.seed or 0)
    else:
        where = f" ({ds.path})" if ds is not None and ds.path else ""
        raise DataError(f"the pairs this model was trained on{where} are not there or have "
                        f"changed; pass data=/--data with the pairs file to judge int8 on")
    return loaded.test.sources, loaded.test.targets
