"""edgernn train"""

from __future__ import annotations

from pathlib import Path

import click

from edgernn.cli.common import Finite, echo_json, json_option, table
from edgernn.choices import NONLINEARITIES
from edgernn.config import HEADS
from edgernn.tasks import DEFAULT_TASK, TASK_NAMES
from edgernn.vocab import ATTENTIONS, SPLITS
from edgernn.cells import FAMILIES


def train_options(f):
    """Options shared by ``train`` and ``demo``: task, data, model and training overrides."""
    options = [
        click.option("--task", "task_name", default=DEFAULT_TASK, show_default=True,
                     type=click.Choice(TASK_NAMES),
                     help="What to learn: classify (one label per sequence), keyword (the "
                          "word a one-second clip of 16 kHz audio holds; built-in: spoken "
                          "clips), forecast (the next frame), charlm "
                          "(the next character), vad (speech or silence every 10 ms of audio) "
                          "or seq2seq (an output text for an input text; built-in: dates to "
                          "ISO 8601)."),
        click.option("--data", type=click.Path(path_type=Path),
                     help="Your own data instead of the built-in data set (.npz; .csv for "
                          "forecast; .txt for charlm; source<TAB>target lines for seq2seq; a "
                          "folder of WAV files for keyword and vad). "
                          "See the README for the layout."),
        click.option("--keywords",
                     help="keyword on a folder of WAV clips: the word folders to learn, "
                          "comma-separated; the clips of every other word folder become one "
                          "_unknown_ class, 10 %% as many as the keywords' (Speech Commands' "
                          "recipe) [default: every folder is a label]."),
        click.option("--tokens", type=click.Choice(SPLITS),
                     help="Text: characters, space-separated words, or words and punctuation "
                          "apart [default: chars for seq2seq, wordpunct for a text "
                          "classifier]."),
        click.option("--text-column", help="classify on a .csv/.tsv/.jsonl of texts: the column "
                                           "(key) holding the text [default: text]."),
        click.option("--label-column", help="...and the one holding its label [default: "
                                            "label]."),
        click.option("--keep-case", is_flag=True, default=None,
                     help="Text classifiers: keep upper case apart (default: lower-case)."),
        click.option("--max-vocab", type=click.IntRange(3),
                     help="Text classifiers: the most frequent tokens kept, the rest unknown "
                          "[default: 8000]."),
        click.option("--max-length", type=click.IntRange(1),
                     help="Text classifiers: tokens read from a text (the first ones) "
                          "[default: 200]."),
        click.option("--embedding", type=click.IntRange(1),
                     help="Token embedding width [default: 64]."),
        click.option("--embeddings", type=click.Path(dir_okay=False, path_type=Path),
                     help="classify on texts: pretrained word vectors to start the token "
                          "embedding from (word2vec or GloVe text format); sets its width."),
        click.option("--target-tokens", type=click.Choice(SPLITS),
                     help="seq2seq: how targets split, when not as --tokens (e.g. characters "
                          "in, space-separated phonemes out)."),
        click.option("--attention", type=click.Choice(ATTENTIONS),
                     help="seq2seq: the decoder's attention over the input, or none (the "
                          "encoder's last state only) [default: luong]."),
        click.option("--cell", type=click.Choice(sorted(FAMILIES)), help="Recurrent cell."),
        click.option("--nonlinearity", type=click.Choice(NONLINEARITIES),
                     help="Activation of 'rnn' cells."),
        click.option("--hidden", type=click.IntRange(1), help="Hidden units per layer."),
        click.option("--layers", type=click.IntRange(1), help="Stacked layers."),
        click.option("--bidirectional", is_flag=True, default=None,
                     help="Bidirectional layers (whole-sequence use only; cannot stream)."),
        click.option("--dropout", type=Finite(0, 1, max_open=True),
                     help="Dropout while training: on embedded tokens, between stacked layers "
                          "and on the recurrent outputs before the head."),
        click.option("--head", type=click.Choice(HEADS), help="Output head."),
        click.option("--epochs", type=click.IntRange(1), help="Maximum epochs."),
        click.option("--batch-size", type=click.IntRange(1)),
        click.option("--lr", type=Finite(0, min_open=True),
                     help="Peak learning rate [default: the task's; on a small set that it "
                          "does not fit, a third of it is tried as well, unless --epochs or "
                          "--time-budget is given]."),
        click.option("--bptt", type=click.IntRange(1),
                     help="Truncated BPTT window in steps (stream tasks)."),
        click.option("--patience", type=click.IntRange(1),
                     help="Early stopping: epochs without a better validation loss (accuracy "
                          "for text classifiers), counted "
                          "once the warm-up is over [default: the task's, 5 or 4]."),
        click.option("--min-delta", type=Finite(0),
                     help="Early stopping: how much lower a validation loss must be to count as "
                          "better [default: 1e-6]."),
        click.option("--warmup-steps", type=click.IntRange(0),
                     help="Optimiser steps of linear learning-rate warm-up [default: 20]."),
        click.option("--time-budget", type=Finite(0), default=0, show_default="off",
                     help="Stop after the epoch that passes this many seconds (0: off). A "
                          "budget makes the result depend on the machine's speed."),
        click.option("--difference/--no-difference", default=None,
                     help="forecast: model one-step changes and forecast levels from them (for "
                          "series with a trend), or model levels. [default: decided by an "
                          "augmented Dickey-Fuller test on the training split]"),
        click.option("--size", type=Finite(0, min_open=True), default=1.0,
                     show_default=True, help="Scale of the generated data set."),
        click.option("--seed", type=int, default=0, show_default=True),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def run_training(task_name, data, seed, size, verbose=True, **overrides):
    """Train as the options say (see :func:`edgernn.pipeline.train`)."""
    from edgernn.pipeline import train

    return train(task_name, data, seed=seed, size=size, verbose=verbose, **overrides)


def print_summary(result) -> None:
    if hasattr(result, "save"):
        return _print_seq2seq(result)
    t = result.task
    rows = [[f"test {t.metric}", result.test_metric]]
    rows += [[k.replace("_", " "), v] for k, v in result.baseline.items()]
    rows += [["useful level reached", "yes" if result.reached else "no"],
             ["epochs (best)", f"{len(result.history)} ({result.best_epoch})"],
             ["stopped", result.stop_reason], ["seconds", result.seconds]]
    c = result.config
    click.echo(f"{t.name}: {c.name} {c.rnn_input_size}->{c.hidden_size}x{c.num_layers}"
               f" -> {c.output_size} ({c.head})")
    click.echo(table(rows, ["figure", "value"]))
    if not result.reached:
        behind = t.behind(result)
        what = f"{behind}; " if behind else f"the test {t.metric} is not at the useful level: "
        click.echo(f"\n{what}{t.advice(result)}")


def _print_seq2seq(result) -> None:
    c, test = result.model.config, result.test
    click.echo(f"seq2seq: {c.cell} {c.hidden_size}x{c.num_layers}"
               f"{' bidirectional' if c.bidirectional else ''} encoder, attention "
               f"{c.attention}; vocabularies {len(result.source)} -> {len(result.target)}")
    rows = [["test exact match", f"{test['exact_match']:.4f} +/- {test['exact_match_se']:.4f}"],
            ["test token error rate", f"{test['token_error_rate']:.4f}"],
            ["test pairs", test["sequences"]], ["epochs", len(result.history)],
            ["stopped", result.stop_reason], ["seconds", round(result.seconds, 1)]]
    click.echo(table(rows, ["figure", "value"]))


@click.command("train")
@train_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("model.pt"), show_default=True, help="Checkpoint to write.")
@json_option
def command(output, as_json, **options):
    """Train a recurrent model on a built-in task or your data; write a checkpoint.

    \b
    Examples:
      edgernn train --task forecast -o forecast.pt
      edgernn train --task classify --cell gru --hidden 64 --epochs 5
      edgernn train --task forecast --data sensors.csv -o mine.pt
    """
    from edgernn.checkpoint import save_checkpoint
    from edgernn.cli.checks import readable, writable
    from edgernn.errors import DataError

    readable(options.get("data"), "--data", folder=True)
    data = options.get("data")
    if data is not None and Path(data).is_dir() and \
            Path(data).resolve() in Path(output).resolve().parents:
        raise DataError(f"--output {output} is inside the training data folder {data}; write "
                        f"the checkpoint somewhere else, so no clip is overwritten")
    readable(options.get("embeddings"), "--embeddings")
    writable(output, "--output", inputs={"the training data": options.get("data"),
                                         "the embeddings file": options.get("embeddings")})
    result = run_training(**options)
    if hasattr(result, "save"):                       # seq2seq: its own checkpoint
        result.save(output)
    else:
        save_checkpoint(output, result.checkpoint())
    if as_json:
        echo_json({**result.summary(), "checkpoint": str(output)})
    else:
        print_summary(result)
        click.echo(f"checkpoint: {output}")
