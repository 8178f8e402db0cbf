"""Device profiles: which execution providers, threads, precision and op form suit a device.

A profile is one small JSON file. The built-in ones ship inside the package
(``edgernn/devices/profiles/*.json``); a user's own is passed by path. A malformed profile is
refused with an error naming the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import onnxruntime as ort

from edgernn.contract import OP_FORMS
from edgernn.devices import provider_options
from edgernn.errors import ConfigError

PRECISIONS = ("fp32", "fp16", "int8")
OPT_LEVELS = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    providers: list           # [name] or [[name, {options}]], best first; CPU is implied last
    threads: int | None = None
    precision: str = "fp32"   # the artifact this device prefers
    ops: str = "fused"        # fused recurrent operators, decomposed MatMul form, or compact
    graph: str = "step"
    optimization: str = "all"
    spinning: bool = True     # intra-op threads spin between calls (lower latency, more power)
    why: str = ""
    arch: list = field(default_factory=list)   # machine architectures it targets (uname -m)
    source: str = ""

    def provider_list(self) -> list:
        return [p if isinstance(p, str) else (p[0], dict(p[1])) for p in self.providers]

    def provider_names(self) -> list[str]:
        return [p if isinstance(p, str) else p[0] for p in self.providers]

    def session_options(self) -> ort.SessionOptions:
        options = ort.SessionOptions()
        options.graph_optimization_level = OPT_LEVELS[self.optimization]
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if self.threads:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        if not self.spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return options

    def usable(self) -> tuple[bool, str]:
        """Whether this machine's onnxruntime has the profile's first choice of provider."""
        import platform

        available = set(ort.get_available_providers())
        first = self.provider_names()[0]
        if first not in available:
            return False, f"{first} not in this onnxruntime build (falls back to CPU)"
        machine = platform.machine()
        if self.arch and machine not in self.arch:
            return True, (f"{first} available; the profile targets {'/'.join(self.arch)}, this "
                          f"is {machine}")
        return True, f"{first} available"

    def quantize_mode(self) -> str | None:
        """The quantize mode that gives this profile's preferred precision (None: fp32)."""
        return {"int8": "dynamic", "fp16": "fp16"}.get(self.precision)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _field(data: dict, key: str, types, where: str, default=None, required=False):
    if key not in data:
        if required:
            raise ConfigError(f"profile {where}: field '{key}' is missing")
        return default
    value = data[key]
    if not isinstance(value, types) or isinstance(value, bool) and bool not in (
            types if isinstance(types, tuple) else (types,)):
        raise ConfigError(f"profile {where}: field '{key}' is {value!r}, expected "
                          f"{getattr(types, '__name__', types)}")
    return value


def parse(data, where: str) -> Profile:
    if not isinstance(data, dict):
        raise ConfigError(f"profile {where}: expected a JSON object")
    known = set(Profile.__dataclass_fields__) - {"source"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"profile {where}: unknown field(s) {', '.join(unknown)}; known "
                          f"fields are {', '.join(sorted(known))}")
    providers = _field(data, "providers", list, where, required=True)
    for i, p in enumerate(providers):
        ok = isinstance(p, str) or (isinstance(p, list) and len(p) == 2
                                    and isinstance(p[0], str) and isinstance(p[1], dict))
        if not ok:
            raise ConfigError(f"profile {where}: field 'providers[{i}]' is {p!r}; each entry is "
                              f"a provider name or [name, {{options}}]")
        if isinstance(p, list):
            provider_options.check(p[0], p[1], where)
    threads = _field(data, "threads", int, where)
    if threads is not None and threads < 1:
        raise ConfigError(f"profile {where}: field 'threads' must be >= 1")
    precision = _field(data, "precision", str, where, "fp32")
    if precision not in PRECISIONS:
        raise ConfigError(f"profile {where}: field 'precision' is {precision!r}, expected one "
                          f"of {', '.join(PRECISIONS)}")
    ops = _field(data, "ops", str, where, "fused")
    if ops not in OP_FORMS:
        raise ConfigError(f"profile {where}: field 'ops' is {ops!r}, expected one of "
                          f"{', '.join(OP_FORMS)}")
    optimization = _field(data, "optimization", str, where, "all")
    if optimization not in OPT_LEVELS:
        raise ConfigError(f"profile {where}: field 'optimization' is {optimization!r}, "
                          f"expected one of {', '.join(OPT_LEVELS)}")
    return Profile(name=_field(data, "name", str, where, required=True),
                   description=_field(data, "description", str, where, ""),
                   providers=providers, threads=threads, precision=precision, ops=ops,
                   graph=_field(data, "graph", str, where, "step"), optimization=optimization,
                   spinning=_field(data, "spinning", bool, where, True),
                   why=_field(data, "why", str, where, ""),
                   arch=_field(data, "arch", list, where, []), source=where)


def builtin_names() -> list[str]:
    folder = resources.files("edgernn.devices") / "profiles"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def get_profile(name_or_path: str) -> Profile:
    """A built-in profile by name, or a user's profile file by path."""
    path = Path(name_or_path)
    if path.suffix == ".json" or path.exists():
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise ConfigError(f"cannot read profile {path}: {exc.strerror}") from None
        where = str(path)
    else:
        folder = resources.files("edgernn.devices") / "profiles"
        entry = folder / f"{name_or_path}.json"
        if not entry.is_file():
            raise ConfigError(f"unknown device profile {name_or_path!r}; built-in profiles are "
                              f"{', '.join(builtin_names())}, or pass a profile file's path")
        text, where = entry.read_text(encoding="utf-8-sig"), name_or_path
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"profile {where} is not valid JSON: {exc}") from None
    return parse(data, where)


def all_profiles() -> list[Profile]:
    return [get_profile(n) for n in builtin_names()]
