"""The limits edgernn documents are the ones it checks (edgernn/limits.py, one place each).

Host side only: it reads docs/, which the device install does not carry."""


def test_the_docs_state_the_limits_the_code_checks():
    """edgernn/limits.py is the one place for each limit; the docs quote the same figures."""
    from pathlib import Path

    from edgernn import limits

    root = Path(__file__).resolve().parents[1]
    seq2seq = (root / "docs/seq2seq.md").read_text()
    assert f"beam at most {limits.MAX_BEAM} hypotheses" in seq2seq
    assert f"at most {limits.MAX_TOKENS:,} tokens" in seq2seq
    assert f"would pass {limits.DECODE_BUDGET:,}" in seq2seq
    assert f"a field up to {limits.MAX_FIELD:,} characters" in (root / "docs/text.md").read_text()
