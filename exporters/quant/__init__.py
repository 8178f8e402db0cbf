"""Quantization from the file alone (no torch): the entry point and its options
(:mod:`.quantize`), the row-independent int8 rewrite (:mod:`.int8`), calibration
(:mod:`.calibrate`), the quality gate (:mod:`.gate`) and fp16 and coverage (:mod:`.qgraph`)."""
