"""PyTorch to ONNX: the module to export (a checkpoint or a user's module) and its state layout
(:mod:`.source`), the wrappers that make it a step, chunk or sequence graph (:mod:`.modules`,
:mod:`.fold` for normalisation, :mod:`.difference` for differenced forecasters), and the export
with its parity check (:mod:`.export`). Needs torch."""
