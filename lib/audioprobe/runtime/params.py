"""Loading and validating params.yaml: the shared base model and one loader for every lane.

Each top-level group of params.yaml has its schema in the package that owns it:
`data` and `data_report` in `audioprobe/data/params.py`, and a lane `<lane>` in
`audioprobe/<lane>/params.py` (module attribute `SCHEMA`). A stage validates only the
groups it reads, so a stage's DVC deps are this module plus its own group's schema, and
editing one lane's schema never reruns another lane.

An unknown key, a wrong type or an out-of-range value raises ParamsError with one line
naming the key and what is allowed. `dvc exp run -S` rewrites params.yaml through
OmegaConf, so params.yaml holds plain values only (no `${}`).
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from audioprobe.runtime.errors import ParamsError


class Strict(BaseModel):
    """Base model: unknown keys are errors, values are never coerced from other types."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Root(Strict):
    """The keys that belong to no lane."""

    seed: int = Field(42, ge=0, le=2**32 - 1)
    # pinned: the same kernels and thread counts on every x86-64 machine (runtime/numerics.py);
    # native: each numeric library's own choice for this CPU.
    numerics: Literal["pinned", "native"] = "pinned"


# Groups whose schema module does not follow `audioprobe.<group>.params`.
_SPECIAL = {"data_report": "audioprobe.data.params"}
_ROOT_KEYS = set(Root.model_fields)


def schema_for(group: str) -> type[BaseModel]:
    """Return the pydantic model of one top-level params group (imported lazily)."""
    module = _SPECIAL.get(group, f"audioprobe.{group}.params")
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        spec = None
    if spec is None:
        raise ParamsError(f"params: unknown group '{group}'; known groups: {', '.join(known_groups())}")
    mod = importlib.import_module(module)
    schemas = getattr(mod, "SCHEMAS", None) or {group: mod.SCHEMA}
    return schemas[group]


def known_groups() -> list[str]:
    """Top-level groups that have a schema: every package under audioprobe/ with a params.py."""
    root = Path(__file__).parents[1]  # lib/audioprobe: every package with a params.py but this one
    lanes = sorted(p.parent.name for p in root.glob("*/params.py") if p.parent.name != "runtime")
    return sorted({*lanes, *_SPECIAL})


def _field_path(model: type[BaseModel] | None, loc: tuple) -> tuple:
    """Drop pydantic's union-member tags ('str', 'list[str]', ...) that are not params keys."""
    out: list = []
    for part in loc:
        if isinstance(part, str) and (model is None or part not in model.model_fields):
            continue  # a union tag past a leaf, not a key
        out.append(part)
        field = model.model_fields.get(str(part)) if model is not None else None
        ann = field.annotation if field is not None else None
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return tuple(out)


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return None
        model = field.annotation
    return model


def _format_error(err: dict[str, Any], model: type[BaseModel], prefix: str, source: str) -> str:
    kind = err["type"]
    pre = f"{prefix}." if prefix else ""
    if kind == "extra_forbidden":
        key = pre + ".".join(str(p) for p in err["loc"])
        parent_model = _model_at(model, err["loc"][:-1])
        allowed = ", ".join(parent_model.model_fields) if parent_model else "see the schema"
        return f"{source}: unknown key '{key}'; allowed keys here: {allowed}"
    key = pre + ".".join(str(p) for p in _field_path(model, err["loc"])) if err["loc"] else prefix
    msg = err["msg"][0].lower() + err["msg"][1:]
    if kind == "value_error":  # a cross-field check: its message already says what is wrong
        return f"{source}: {key or '<root>'}: {msg.removeprefix('value error, ')}"
    return f"{source}: {key or '<root>'} {msg.removeprefix('input ')}, got {err.get('input')!r}"


def _validate(model: type[BaseModel], raw: Any, prefix: str, source: str) -> Any:
    try:
        return model.model_validate({} if raw is None else raw)
    except ValidationError as exc:
        errs = exc.errors()
        first = _format_error(errs[0], model, prefix, source)
        more = f" (+{len(errs) - 1} more)" if len(errs) > 1 else ""
        raise ParamsError(first + more) from None


def _check_top_level(raw: Any, source: str) -> None:
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    allowed = _ROOT_KEYS | set(known_groups())
    for key in raw:
        if key not in allowed:
            raise ParamsError(f"{source}: unknown key '{key}'; allowed top-level keys: {', '.join(sorted(allowed))}")


def validate_group(raw: Any, group: str, source: str = "params.yaml") -> Any:
    """Return the validated value of one dotted group (e.g. 'kws.train') from a parsed mapping."""
    _check_top_level(raw, source)
    head, *rest = group.split(".")
    if head in _ROOT_KEYS:
        node: Any = _validate(Root, {head: raw[head]} if head in raw else {}, "", source)
        node = getattr(node, head)
    else:
        node = _validate(schema_for(head), raw.get(head), head, source)
    for part in rest:
        node = getattr(node, part)
    return node


def validate(raw: Any, source: str = "params.yaml") -> dict[str, Any]:
    """Validate every group of a parsed params mapping; return {group: validated value}."""
    _check_top_level(raw, source)
    out: dict[str, Any] = {key: validate_group(raw, key, source) for key in sorted(_ROOT_KEYS)}
    for group in known_groups():
        out[group] = validate_group(raw, group, source)
    return out


def read(path: str | Path = "params.yaml") -> Any:
    """Return the parsed params file (not yet validated)."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ParamsError(f"{path}: not found; run from the repository root") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None


def load(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read and validate the whole params file (every group): {group: value}."""
    return validate(read(path), str(path))


def load_group(group: str, path: str | Path = "params.yaml") -> Any:
    """Read the params file and return one validated dotted group (e.g. 'data.esc50', 'seed').

    Only that group's top-level schema is checked (plus the names of the top-level keys),
    so a stage depends on its own lane's schema and nothing else.
    """
    return validate_group(read(path), group, str(path))
