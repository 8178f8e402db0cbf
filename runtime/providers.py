"""Choosing execution providers: what was asked, what this onnxruntime build has, what we got.

A requested provider that is not available is dropped with one warning naming what is used
instead; the order of the rest is kept, and CPU is always the last resort.
"""

from __future__ import annotations

import warnings

import onnxruntime as ort

CPU = "CPUExecutionProvider"


class ProviderFallbackWarning(UserWarning):
    """A requested execution provider is not available here."""


def _name(p) -> str:
    return p[0] if isinstance(p, tuple) else p


def resolve(requested: list | None) -> list:
    """``requested`` (names or (name, options) pairs) filtered to what is available."""
    if not requested:
        return [CPU]
    available = set(ort.get_available_providers())
    chosen = [p for p in requested if _name(p) in available]
    missing = [_name(p) for p in requested if _name(p) not in available]
    if not any(_name(p) == CPU for p in chosen):
        chosen.append(CPU)
    if missing:
        warnings.warn(f"execution provider(s) {', '.join(missing)} not available in this "
                      f"onnxruntime build (it has {', '.join(sorted(available))}); using "
                      f"{', '.join(_name(p) for p in chosen)}", ProviderFallbackWarning,
                      stacklevel=3)
    return chosen
