"""The step-graph forms edgernn writes itself, from the cell families (edgernn/cells.py): the
compact graph (:mod:`.compact`), the lean graph (:mod:`.lean`), and lowering fused recurrent
operators to matrix products (:mod:`.lower`). Need onnx, not torch, except to read a module's
weights."""
