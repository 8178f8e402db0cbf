"""edgernn info"""

from __future__ import annotations

import os
from pathlib import Path

import click

from edgernn.cli.common import echo_json, foreign_kwargs, foreign_options, json_option, table
from edgernn.errors import DataError


def _kind(path: Path) -> str:
    if path.suffix == ".onnx":
        return "onnx"
    if path.suffix in (".pt", ".pth", ".ckpt"):
        return "checkpoint"
    with open(path, "rb") as fh:
        head = fh.read(4)
    return "checkpoint" if head.startswith(b"PK") else "onnx"   # torch.save writes a zip


def describe_checkpoint(path: Path) -> dict:
    from edgernn.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    model = ckpt.build_model()
    return {
        "kind": "checkpoint", "path": str(path), "task": ckpt.task,
        "model": ckpt.config.to_dict(), "name": ckpt.config.name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "macs_per_step": ckpt.config.macs_per_step(),
        "streamable": ckpt.config.streamable,
        "preprocessing": bool(ckpt.preprocessing), "labels": ckpt.labels,
        "vocabulary": ckpt.vocabulary, "metrics": ckpt.metrics, "training": ckpt.training,
        "weights_sha256": ckpt.weights_sha256(), "edgernn_version": ckpt.edgernn_version,
    }


def describe_onnx(path: Path, load_kwargs: dict | None = None) -> dict:
    """What the file declares; for a file without a contract, the one the runtime infers (with
    the caller's --state/--constant/--dim), or why it cannot."""
    import warnings

    from edgernn.errors import EdgeRNNError
    from edgernn.runtime import contract_of, load, open_session, signature
    from edgernn.runtime.infer import axis_names, frame_axes_unknown

    session = open_session(path)
    inputs, outputs = signature(session)
    contract = contract_of(session)
    doc = {
        "kind": "onnx", "path": str(path), "bytes": os.path.getsize(path),
        "inputs": [{**vars(i), "shape": axis_names(i)} for i in inputs],
        "outputs": [{**vars(o), "shape": axis_names(o)} for o in outputs],
        "contract": contract.to_dict() if contract else None,
    }
    if contract is None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = load(path, **(load_kwargs or {}))
            doc["inferred"] = {"contract": model.contract.to_dict(), "how": model.inferred}
            open_axes = frame_axes_unknown(model.contract)
            if open_axes:
                doc["inferred"]["how"] += (f"; to stream it, give the size of "
                                           f"{', '.join(open_axes)} with --dim "
                                           f"{open_axes[0]}=SIZE")
        except EdgeRNNError as exc:
            doc["inferred"] = {"contract": None, "how": str(exc)}
    return doc


def _print(doc: dict) -> None:
    if doc["kind"] == "checkpoint":
        m = doc["model"]
        rows = [["task", doc["task"]], ["cell", doc["name"]],
                ["sizes", f"{m['input_size']} -> {m['hidden_size']} x {m['num_layers']} -> "
                          f"{m['output_size']} ({m['head']})"],
                ["parameters", doc["parameters"]], ["MACs per step", doc["macs_per_step"]],
                ["streamable", doc["streamable"]]]
        rows += [[f"metric {k}", v] for k, v in doc["metrics"].items()]
        rows += [["weights sha256", doc["weights_sha256"][:16] + "..."]]
    else:
        c = doc["contract"]
        rows = [["file size", f"{doc['bytes']:,} bytes"]]
        rows += [[f"input {i['name']}", f"{i['shape']} {i['dtype']}"] for i in doc["inputs"]]
        rows += [[f"output {o['name']}", f"{o['shape']} {o['dtype']}"] for o in doc["outputs"]]
        if c is None:
            rows.append(["contract", "none (not written by edgernn)"])
            inferred = doc.get("inferred") or {}
            rows.append(["runtime would use" if inferred.get("contract") else
                         "runtime cannot stream it", inferred.get("how", "")])
        else:
            rows += [["graph", c["graph"]], ["task", c["task"] or "-"],
                     ["states", ", ".join(f"{s['name']} {s['shape']}" for s in c["states"])
                      or "none"],
                     ["exporter", f"{c['provenance']['exporter']} opset "
                                  f"{c['provenance']['opset']}"]]
            if c.get("dataset"):
                from edgernn.contract import DataRef

                rows.append(["trained on", DataRef.from_dict(c["dataset"], "dataset").describe()])
            if c.get("audio"):
                a = c["audio"]
                rows.append(["audio front end",
                             f"{a['sample_rate']} Hz samples in, {a['mel_bins']} log-mel bins, "
                             f"{a['frame_ms']:g} ms {a['window']} window every {a['hop_ms']:g} "
                             f"ms, in the graph (its overlap: state audio_tail)"])
            if c.get("difference"):
                rows.append(["forecasts", "through one-step differences, returns levels"])
            if (c.get("dataset") or {}).get("trend"):
                rows.append(["trend", c["dataset"]["trend"]])
            rows += [[f"parity {p['metric']}",
                      f"{p['measured']:.3g} {'<=' if p['measured'] <= p['tolerance'] else '>'} "
                      f"{p['tolerance']:.3g} vs {p['reference']}"
                      + (f" on {p['dataset']['name']}" if p.get("dataset") else "")]
                     for p in c["parity"]]
            if c["quantization"]:
                rows.append(["quantization", c["quantization"]["mode"]])
    click.echo(f"{doc['path']} ({doc['kind']})")
    click.echo(table(rows, ["field", "value"]))


@click.command("info")
@click.argument("path", type=click.Path(path_type=Path))
@foreign_options
@json_option
def command(path, state_pairs, constant_values, dim_sizes, as_json):
    """Show what a checkpoint or an ONNX file contains.

    \b
    Examples:
      edgernn info model.pt
      edgernn info model.onnx --json
    """
    if not path.is_file():
        raise DataError(f"{path} does not exist or is not a file; pass a checkpoint (.pt) or an "
                        f"ONNX file (.onnx)")
    from edgernn.cli.checks import readable

    readable(path, "file")
    kwargs = foreign_kwargs(state_pairs, constant_values, dim_sizes)
    doc = describe_checkpoint(path) if _kind(path) == "checkpoint" else describe_onnx(path, kwargs)
    if as_json:
        echo_json(doc)
    else:
        _print(doc)
