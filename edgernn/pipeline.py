"""The pipeline as functions a program calls: train from options, and the whole demo (train,
export, validate against PyTorch, stream through the runtime, quantize behind the gate).
``edgernn train`` and ``edgernn demo`` are thin wrappers around these.

Host side: torch loads only once the data is known good.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgernn.choices import DEFAULT_QUANTIZE_MODE, quantized_path
from edgernn.progress import log

# train's model and training overrides: option name -> the config field it sets
MODEL_OVERRIDES = {"cell": "cell", "nonlinearity": "nonlinearity", "hidden": "hidden_size",
                   "layers": "num_layers", "bidirectional": "bidirectional",
                   "dropout": "dropout", "head": "head"}
TRAINING_OVERRIDES = ("epochs", "batch_size", "lr", "bptt", "patience", "min_delta",
                      "warmup_steps", "time_budget", "difference")
SEQ2SEQ_ONLY = ("target_tokens", "attention")
# a classifier's text file: option -> load_text()'s argument
TEXT_OPTIONS = {"text_column": "text_column", "label_column": "label_column",
                "tokens": "tokens", "keep_case": "lower", "max_vocab": "max_vocab",
                "max_length": "max_length"}
# what seq2seq training takes: option -> Seq2SeqConfig field, and fit()'s own
SEQ2SEQ_MODEL = {"cell": "cell", "hidden": "hidden_size", "layers": "num_layers",
                 "bidirectional": "bidirectional", "dropout": "dropout",
                 "attention": "attention", "embedding": "embedding_dim"}
SEQ2SEQ_TRAINING = ("epochs", "batch_size", "lr", "patience", "min_delta", "warmup_steps",
                    "time_budget")


def train(task_name: str = "keyword", data=None, *, seed: int = 0, size: float = 1.0,
          verbose: bool = True, **overrides):
    """Train ``task_name`` on ``data`` (a file) or its built-in data set; the defaults are sized
    to the data, then ``overrides`` (``cell``, ``hidden``, ``layers``, ``epochs``, ... as the
    CLI's options; None leaves the default) win. Returns the
    :class:`~edgernn.training.TrainResult`."""
    from edgernn.errors import ConfigError
    from edgernn.tasks import get_task

    known = (set(MODEL_OVERRIDES) | set(TRAINING_OVERRIDES) | set(SEQ2SEQ_ONLY)
             | set(TEXT_OPTIONS) | {"embedding", "embeddings", "keywords"})
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"unknown training option(s) {', '.join(sorted(unknown))}; known: "
                          f"{', '.join(sorted(known))}")
    if task_name == "seq2seq":
        return _train_seq2seq(data, seed, size, verbose, overrides)
    given = sorted(k for k in SEQ2SEQ_ONLY if overrides.get(k) is not None)
    if given:
        raise ConfigError(f"--{given[0].replace('_', '-')} is for --task seq2seq")
    text = {TEXT_OPTIONS[k]: v for k, v in overrides.items() if k in TEXT_OPTIONS
            and v is not None}
    if "lower" in text:
        text["lower"] = not text["lower"]                      # --keep-case
    from edgernn.csvio import TEXT_SUFFIXES

    is_text = data is not None and str(data).lower().endswith(TEXT_SUFFIXES) and \
        task_name in ("classify", "keyword")
    if (text or overrides.get("embedding") or overrides.get("embeddings")) and not is_text:
        name = next((k for k in (*TEXT_OPTIONS, "embedding", "embeddings")
                     if overrides.get(k) is not None))
        raise ConfigError(f"--{name.replace('_', '-')} is for --task classify on a text file "
                          f"(.csv, .tsv, .jsonl)"
                          + (" or for --task seq2seq" if name in ("tokens", "embedding") else ""))
    keywords = overrides.get("keywords")
    if keywords is not None:
        if task_name not in ("classify", "keyword") or data is None or not Path(data).is_dir():
            raise ConfigError("--keywords is for --task keyword on a folder of WAV clips "
                              "(--data FOLDER, one sub-folder per word)")
        keywords = [k.strip() for k in keywords.split(",") if k.strip()] \
            if isinstance(keywords, str) else list(keywords)
        if not keywords:
            raise ConfigError("--keywords names no word; give the folders to learn, e.g. "
                              "--keywords yes,no,up,down")
    task = get_task(task_name)
    if is_text:
        dataset = task.load(data, seed=seed, **text)
    elif keywords:
        dataset = task.load(data, keywords=keywords)
    elif data:
        dataset = task.load(data)
    else:
        # built-in data is good by construction, and spoken clips take seconds to make: a
        # missing torch is said before, not after
        from edgernn.deps import require

        require("torch", "training")
        dataset = task.generate(seed=seed, size=size)
    model, training, why = task.sized(dataset)
    if why and verbose:
        log(why)
    config = model.replace(**{field: overrides[k] for k, field in MODEL_OVERRIDES.items()
                              if overrides.get(k) is not None})
    if overrides.get("embedding"):
        config = config.replace(embedding_dim=overrides["embedding"])
    if overrides.get("embeddings"):
        config = _pretrained(dataset, config, overrides, seed, verbose)
    given = {k: overrides.get(k) for k in TRAINING_OVERRIDES}
    given["time_budget"] = given["time_budget"] or None          # 0 means off
    given["seed"] = seed
    training = training.replace(**{k: v for k, v in given.items() if v is not None})
    from edgernn.training import fit          # torch loads only once the data is known good

    result = fit(task, dataset, config, training, verbose=verbose)
    # the sized defaults' second try; not when the user chose the rate, the epochs or the time
    mine = any(given[k] is not None for k in ("lr", "epochs", "time_budget"))
    again = None if mine else task.retry(result)
    if again is None:
        return result
    retraining, why = again
    if verbose:
        log(why)
    second = fit(task, dataset, config, retraining, verbose=verbose)
    kept = min((result, second), key=lambda r: r.fitted_loss)
    kept.seconds = result.seconds + second.seconds
    if verbose:
        log(f"kept learning rate {kept.training.lr:g} (training loss {kept.fitted_loss:.3f})")
    return kept


def _pretrained(dataset, config, overrides: dict, seed: int, verbose: bool):
    """The model config for the vectors of ``--embeddings``, which ``dataset`` then carries
    as the embedding's first weights."""
    from edgernn.errors import ConfigError
    from edgernn.tasks.vectors import read_vectors

    vectors = read_vectors(overrides["embeddings"], dataset.tokenizer, seed)
    dim = vectors.matrix.shape[1]
    if overrides.get("embedding") and overrides["embedding"] != dim:
        raise ConfigError(f"--embedding {overrides['embedding']} differs from the {dim} values a "
                          f"token has in {vectors.path.name}; drop --embedding")
    dataset.embedding_init = vectors.matrix
    if verbose:
        log(vectors.describe(len(dataset.tokenizer)))
    return config.replace(embedding_dim=dim)


def _train_seq2seq(data, seed: int, size: float, verbose: bool, overrides: dict):
    from edgernn.errors import ConfigError
    from edgernn.tasks.seq2seq import load

    given = {k: v for k, v in overrides.items() if v is not None}
    if not given.get("time_budget"):
        given.pop("time_budget", None)                          # 0 means off
    foreign = sorted(set(given) - set(SEQ2SEQ_MODEL) - set(SEQ2SEQ_TRAINING)
                     - {"tokens", "target_tokens"})
    if foreign:
        raise ConfigError(f"--{foreign[0].replace('_', '-')} is not a seq2seq option; seq2seq "
                          f"takes --tokens, --target-tokens, --attention, --cell, --hidden, "
                          f"--layers, --bidirectional, --dropout, --epochs, --batch-size, "
                          f"--lr, --patience, --min-delta, --warmup-steps, --time-budget")
    dataset = load(data, tokens=given.get("tokens") or "chars", seed=seed, size=size,
                   target_tokens=given.get("target_tokens"))
    from edgernn.seq2seq import Seq2SeqConfig, fit     # torch, once the data is known good

    fields = {SEQ2SEQ_MODEL[k]: v for k, v in given.items() if k in SEQ2SEQ_MODEL}
    if fields.get("attention") == "none" and not fields.get("bidirectional"):
        fields.setdefault("bidirectional", False)
    config = Seq2SeqConfig(len(dataset.source_vocab), len(dataset.target_vocab), **fields)
    return fit(dataset, config, seed=seed, verbose=verbose,
               **{k: v for k, v in given.items() if k in SEQ2SEQ_TRAINING})


@dataclass
class DemoResult:
    train: object                 # TrainResult
    checkpoint: Path
    export: object                # ExportResult
    validate: object              # ValidationReport
    streaming: dict | None        # engine -> p50/p99 microseconds (None: not streamable)
    quantize: object              # QuantizeReport (None: a chunk graph, not quantized)
    mode: str

    def to_dict(self) -> dict:
        return {"train": self.train.summary(), "checkpoint": str(self.checkpoint),
                "export": self.export.to_dict(), "validate": self.validate.to_dict(),
                "streaming": self.streaming,
                "quantize": self.quantize.to_dict() if self.quantize else None}


def demo(out: str | Path, *, horizon: int = 10_000, profile: str | None = None,
         **train_options) -> DemoResult:
    """The whole pipeline into folder ``out``: model.pt, model.onnx, its quantized file and
    drift.png. ``profile`` picks graph, ops, precision and providers; ``train_options`` go to
    :func:`train`."""
    from edgernn.checkpoint import save_checkpoint
    from edgernn.devices import get_profile
    from edgernn.exporters import export, validate
    from edgernn.exporters.quant.quantize import Gate, quantize
    from edgernn.exporters.checks.validate import plot, record

    out = Path(out)
    prof = get_profile(profile) if profile else None
    out.mkdir(parents=True, exist_ok=True)
    log(f"[1/5] train '{train_options.get('task_name', 'keyword')}'")
    result = train(**train_options)
    ckpt_path = save_checkpoint(out / "model.pt", result.checkpoint())
    graph, ops = form_for(profile, None, None, result.config.streamable,
                          result.task.name)
    log(f"[2/5] export a {graph} graph ({f'{ops} ops' if ops else 'ops: export chooses'})")
    exported = export(ckpt_path, out / "model.onnx", graph=graph, ops=ops)
    if ops is None:
        log(f"      {exported.ops} ops")
    log(f"[3/5] validate against PyTorch ({horizon} streamed steps)")
    report = validate(ckpt_path, [exported.path], horizon=horizon)
    record(report)
    plot(report, out / "drift.png")
    streaming = None
    if graph != "sequence":
        log("[4/5] stream through edgernn.runtime, next to PyTorch eager")
        streaming = stream_latency(exported.path, ckpt_path, result, profile)
    mode = (prof.quantize_mode() if prof else None) or DEFAULT_QUANTIZE_MODE
    if graph == "chunk" and mode != "fp16":
        log(f"[5/5] quantize: not for this chunk graph ({mode} quantization takes step graphs: "
            f"export --graph step, then quantize)")
        return DemoResult(result, ckpt_path, exported, report, streaming, None, mode)
    log(f"[5/5] quantize ({mode}) behind the quality gate")
    quant = quantize(exported.path, quantized_path(exported.path, mode), mode=mode,
                     checkpoint=ckpt_path, gate=Gate(horizon=max(horizon, 100)))
    return DemoResult(result, ckpt_path, exported, report, streaming, quant, mode)


def demo_seq2seq(out: str | Path, **train_options) -> dict:
    """The encoder-decoder pipeline into ``out``: train, export the pair (checked token for
    token against PyTorch), then decode the held-out split through the runtime, greedy and
    with beam 4, scored as training scored it."""
    from edgernn.checkpoint import load_seq2seq
    from edgernn.exporters.from_torch.seq2seq import export_seq2seq
    from edgernn.runtime import load
    from edgernn.tasks.seq2seq import load as load_data
    from edgernn.tasks.seq2seq import scores

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log("[1/3] train 'seq2seq'")
    result = train(**train_options)
    ckpt_path = result.save(out / "model.pt")
    log("[2/3] export the encoder and the step decoder, checked against PyTorch")
    exported = export_seq2seq(load_seq2seq(ckpt_path), out / "model.onnx")
    log("[3/3] decode the held-out split through edgernn.runtime")
    data = load_data(train_options.get("data"), tokens=train_options.get("tokens") or "chars",
                     seed=train_options.get("seed", 0), size=train_options.get("size", 1.0),
                     target_tokens=train_options.get("target_tokens"))
    pair = load(exported.encoder, threads=1)
    runtime = {f"beam {k}": scores([t.text for t in pair.translate_batch(
        data.test.sources, beam=k)], data.test.targets, data.target_vocab) for k in (1, 4)}
    return {"train": result.summary(), "checkpoint": str(ckpt_path),
            "export": exported.to_dict(), "runtime": runtime, "result": result}


def form_for(profile, graph, ops, streamable: bool = True,
             task: str = "") -> tuple[str, str | None]:
    """Graph kind and ops: explicit choices win, then the profile's preference, then the
    checkpoint's task's (voice activity: a chunk graph, several hops a call), then export's own
    default. A model that cannot stream (bidirectional) gets a sequence graph unless a graph is
    asked for (export then says why it cannot)."""
    from edgernn.choices import DEFAULT_GRAPH
    from edgernn.tasks import TASKS

    if not streamable and graph is None:
        return "sequence", ops or "fused"
    if profile:
        from edgernn.devices import get_profile

        p = get_profile(profile)
        return graph or p.graph, ops or (p.ops if (graph or p.graph) == "step" else "fused")
    return graph or (TASKS[task].graph if task in TASKS else DEFAULT_GRAPH), ops


def stream_latency(onnx_path, ckpt_path, result, profile=None, steps: int = 2000) -> dict:
    """Stream the task's own frames through the runtime; time it next to PyTorch eager."""
    import numpy as np

    from edgernn.runtime import bench, load

    stream = load(onnx_path, profile=profile, threads=1).stream()
    if result.data.ref.kind == "builtin":
        frames = result.task.stream(steps, seed=7)
    else:                                     # the user's own test frames, one after another
        test = result.data.test.x
        frames = test.reshape(-1, *test.shape[2:])[:steps]
    it = iter(range(10**9))

    def step():
        stream.step(frames[next(it) % steps])

    name = f"edgernn.runtime stream.step ({', '.join(stream.model.providers)})"
    figures = {name: bench.interleaved({"s": step}, steps, rounds=2)["s"]}
    out = {k: {"p50_us": bench.median_of_medians(v) / 1e3,
               "p99_us": float(np.percentile(v, 99) / 1e3)}
           for k, v in figures.items()}
    torch_fig = bench.torch_step_latency(ckpt_path, steps=steps // 2)
    if torch_fig:
        out["pytorch eager"] = torch_fig
    return out
