"""What the docs show is what the code does: the limits it checks, the import paths it shows,
and the old paths of moved modules, which keep working for one release with a warning.

Host side only: it reads docs/ and imports the host side, which the device install lacks."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_docs_state_the_limits_the_code_checks():
    """edgernn/limits.py is the one place for each limit; the docs quote the same figures."""
    from edgernn import limits

    root = ROOT
    seq2seq = (root / "docs/seq2seq.md").read_text()
    assert f"beam at most {limits.MAX_BEAM} hypotheses" in seq2seq
    assert f"at most {limits.MAX_TOKENS:,} tokens" in seq2seq
    assert f"would pass {limits.DECODE_BUDGET:,}" in seq2seq
    assert f"a field up to {limits.MAX_FIELD:,} characters" in (root / "docs/text.md").read_text()


IMPORT = re.compile(r"^\s*(from edgernn[\w.]* import [\w, ]+|import edgernn[\w.]*(?: as \w+)?)\s*"
                    r"(?:#.*)?$")


DOTTED = re.compile(r"`(edgernn(?:\.\w+)+)")
RESOLVE = """
import importlib
def resolve(path):
    parts = path.split(".")
    for n in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:n]))
        except ModuleNotFoundError:
            continue
        for name in parts[n:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(path)
"""


def _doc_imports() -> tuple[list[str], list[str]]:
    """The import lines in README.md's and docs/'s code blocks, and every `edgernn.x.y` they
    name in backticks."""
    lines, names = set(), set()
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text()
        names |= set(DOTTED.findall(text))
        inside = False
        for line in text.splitlines():
            if line.strip().startswith("```"):
                inside = not inside
            elif inside and IMPORT.match(line):
                lines.add(IMPORT.match(line).group(1).strip().rstrip(","))
    return sorted(lines), sorted(names)


def test_every_import_the_docs_show_works():
    """Issue 29: a public module moved with no note and the docs' import failed. Each import
    line in a code block of README.md and docs/ runs, each `edgernn.x.y` they name resolves,
    and none of them warns (a moved path would)."""
    lines, names = _doc_imports()
    assert lines and len(names) >= 5, (lines, names)
    code = ("import warnings\nwarnings.simplefilter('error')\n" + "\n".join(lines) + RESOLVE
            + "".join(f"\nresolve({n!r})" for n in names))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, (lines, names, done.stderr[-2000:])


def test_a_moved_module_keeps_its_old_path_for_a_release_with_a_warning():
    code = """
import warnings
import edgernn.exporters as pkg
function = pkg.quantize
with warnings.catch_warnings(record=True) as seen:
    warnings.simplefilter("always")
    from edgernn.exporters.quantize import Gate, quantize
    from edgernn.exporters.validate import validate
assert quantize is function and pkg.quantize is function and validate is pkg.validate
assert Gate is pkg.Gate
said = [str(w.message) for w in seen if w.category is FutureWarning]
assert any("edgernn.exporters.quantize moved to edgernn.exporters.quant.quantize" in s
           for s in said), said
assert any("edgernn.exporters.validate moved to edgernn.exporters.checks.validate" in s
           for s in said), said
import edgernn.exporters.quant.quantize as real
assert real.__spec__.name == "edgernn.exporters.quant.quantize"
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


FIGURE = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:x|×| ?(?:s|ms|µs|minutes|MB|KB|GB|%))?(?![\w.])")
SOURCE = re.compile(r"benchmarks/\w+\.py|`make \w+`|`?make \w+|edgernn \w+|tests/[\w/]+\.py")


def _measured(block: str) -> list[str]:
    """Decimal figures and quantities with units in ``block``: versions (2.13.0, 3.11), an
    address, thresholds after >=/<= and shapes (40->128x2) are not measurements."""
    text = re.sub(r"`[^`]*`", "", block)                      # code: names, shapes, options
    text = re.sub(r"\d+(?:\.\d+){2,}|Python \d+\.\d+|[≥≤] ?\d+(?:\.\d+)?", "", text)
    return [m.group(0) for m in FIGURE.finditer(text)
            if "." in m.group(0) or not m.group(0).isdigit()]


def test_every_figure_the_readme_quotes_names_where_it_comes_from():
    """Each paragraph or table row of the README that quotes a measured figure names the
    benchmark, make target, command or test that prints it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [b for part in re.split(r"\n\s*\n", readme)
              for b in (part.splitlines() if part.lstrip().startswith("|") else [part])]
    bare = [(figures, block[:80]) for block in blocks
            if (figures := _measured(block)) and not SOURCE.search(block)]
    assert not bare, bare
