"""Pieces the commands share: JSON output and tables."""

from __future__ import annotations

import json
import math

import click


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def echo_json(document) -> None:
    click.echo(json.dumps(_clean(document), indent=2, sort_keys=True))


def table(rows: list[list], header: list[str]) -> str:
    """A plain aligned text table."""
    cells = [[str(c) for c in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.3g}"
        return f"{value:.4f}"
    return str(value)


class Finite(click.FloatRange):
    """A float in a range that is also finite: ``click.FloatRange`` lets nan through (every
    comparison with nan is false) and inf where there is no upper bound."""

    name = "finite float range"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON document instead of text.")


def _pairs(values, option: str, convert) -> dict:
    out = {}
    for text in values:
        name, sep, value = text.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise click.BadParameter(f"{text!r} is not NAME=VALUE", param_hint=option)
        try:
            out[name.strip()] = convert(value.strip())
        except ValueError as exc:
            raise click.BadParameter(f"{text!r}: {exc}", param_hint=option) from None
    return out


def _number(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise ValueError("the value must be a number or a JSON array") from None


def _size(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ValueError("the size must be a positive integer")
    return int(text)


def foreign_options(f):
    """--state, --constant and --dim: how to stream an ONNX file edgernn did not write."""
    for option in reversed([
        click.option("--state", "state_pairs", multiple=True, metavar="IN=OUT",
                     help="Files without an edgernn contract: a state input and the output "
                          "that carries it to the next step (repeat per state) [default: "
                          "inferred from names and shapes]."),
        click.option("--constant", "constant_values", multiple=True, metavar="NAME=VALUE",
                     help="Files without a contract: an input that stays fixed, e.g. sr=16000 "
                          "(a number or a JSON array)."),
        click.option("--dim", "dim_sizes", multiple=True, metavar="AXIS=SIZE",
                     help="Files without a contract: the size of a frame axis the file leaves "
                          "open, by its name (sequence=576) or by position (input[1]=576)."),
    ]):
        f = option(f)
    return f


def foreign_kwargs(state_pairs, constant_values, dim_sizes) -> dict:
    """The keyword arguments of edgernn.runtime.load from the options above."""
    return {"states": _pairs(state_pairs, "--state", str) or None,
            "constants": _pairs(constant_values, "--constant", _number) or None,
            "dims": _pairs(dim_sizes, "--dim", _size) or None}
