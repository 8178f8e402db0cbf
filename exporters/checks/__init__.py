"""Parity: driving a file and a reference the same way and comparing under the tolerance rule
(:mod:`.parity`), validation against PyTorch (:mod:`.validate`) and its report
(:mod:`.report`)."""
