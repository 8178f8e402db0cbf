"""edgernn's documented limits, each checked before anything is allocated for it.

Pure Python: the host and the device side both import it. docs/seq2seq.md and docs/text.md
state these figures; a test holds the docs to them.
"""

# The longest field of a CSV or TSV text file, in characters (Python's csv module stops at
# 128 KiB unless told): a whole review or article fits; beyond it a file is more likely broken
# (an unclosed quote that swallowed the rest) than a text.
MAX_FIELD = 1 << 24

# An encoder-decoder's input and output, in tokens: when training (each side of a pair) and when
# decoding (the input, and max_len).
MAX_TOKENS = 4096

# Beam search: hypotheses kept per input.
MAX_BEAM = 64

# Hypotheses x input tokens in one decoder call: the attention memory is about
# 2 x this x hidden floats (256 MB at hidden 256). A batch of inputs whose beams would hold more
# is decoded in groups, each group as it would be alone, so memory stays bounded whatever the
# batch; time is linear in beam x length.
DECODE_BUDGET = 1 << 17
