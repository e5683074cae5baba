"""Typed loading of training recipes: YAML files, dotted ``key=value`` overrides, dumps.

Every value is checked against the dataclass field's annotation; an unknown key (in the
file or on the command line) is an error that names the closest known keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import yaml

from resnets.train.config import TrainConfig, validate
from resnets.train.recipes import find_recipe


class ConfigError(ValueError):
    """A recipe that does not fit the configuration's types or keys."""


def known_keys(cls: type = TrainConfig, prefix: str = "") -> list[str]:
    """Every dotted key of ``cls``, e.g. ``optim.lr``, ``data.batch_size``."""
    keys: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        keys.append(key)
        if dataclasses.is_dataclass(hints[f.name]):
            keys.extend(known_keys(hints[f.name], prefix=f"{key}."))
    return keys


def _section(key: str) -> str:
    """``optim.lr`` -> ``optim``; a top-level key -> ``""``."""
    return key.rsplit(".", 1)[0] if "." in key else ""


def _unknown_key(key: str) -> ConfigError:
    close = difflib.get_close_matches(key, known_keys(), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    siblings = [k for k in known_keys() if _section(k) == _section(key) and k.count(".") == key.count(".")]
    where = f"in {_section(key)}:" if _section(key) else "at the top level"
    return ConfigError(f"unknown config key {key!r}{hint} (known {where} {', '.join(siblings)})")


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping that repeats a key (``problem_mark``: where the repeat is)."""


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key repeated in one mapping (PyYAML keeps the last
    one silently: a second ``lr`` or ``model:`` section would replace the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader reports it below
                continue
            if first is not None:
                raise DuplicateKeyError(
                    None, None, f"key {key!r} is given twice (first at line {first.start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """YAML text -> Python values, refusing duplicate keys (see :class:`UniqueKeyLoader`)."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` checked (and minimally converted: int->float, list->tuple) against ``tp``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin is Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, prefix=f"{key}.")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin is list:
        if isinstance(value, (list, tuple)):
            return [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    elif origin is tuple:
        if isinstance(value, (list, tuple)):
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
            if len(value) == len(args):
                return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    elif origin is dict:
        if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
            return {k: _coerce(v, args[1], f"{key}.{k}") for k, v in value.items()}
    else:  # pragma: no cover - an annotation this loader does not know
        raise ConfigError(f"{key}: unsupported field type {_type_name(tp)}")
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__})")


def from_dict(cls: type, values: Mapping[str, Any], *, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, type-checking every field."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in names:
            raise _unknown_key(f"{prefix}{key}")
    kwargs = {k: _coerce(v, hints[k], f"{prefix}{k}") for k, v in values.items()}
    try:
        return cls(**kwargs)
    except ValueError as exc:  # a section's own checks (e.g. DataConfig.__post_init__)
        raise ConfigError(str(exc)) from exc


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong and where (line, column)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``["optim.lr=0.05", "data.batch_size=64"]`` -> nested dict; values via ``yaml.safe_load``."""
    nested: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key or key != key.strip():
            raise ConfigError(f"override {pair!r} is not of the form key=value (e.g. optim.lr=0.05)")
        try:
            value = load_yaml(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"override {pair!r}: the value of {key} is not valid YAML ({_yaml_problem(exc)}); "
                f"quote text and close brackets, e.g. {key}='text' or {key}=[1, 2]"
            ) from None
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {pair!r} conflicts with an earlier override of {part!r}")
            node = child
        node[leaf] = value
    return nested


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive merge: ``update`` wins; nested mappings are merged key by key."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def config_from_mapping(
    values: Mapping[str, Any], overrides: Sequence[str] = (), *, notes: list[str] | None = None
) -> TrainConfig:
    """A validated :class:`TrainConfig` from a mapping plus ``key=value`` overrides.

    A run has one length: an override of ``train.iterations`` on a recipe that counts
    ``train.epochs`` clears the epochs (and the other way round); ``notes`` receives a line saying so.
    """
    update = parse_overrides(overrides)
    merged = merge(values, update)
    for given, other in (("iterations", "epochs"), ("epochs", "iterations")):
        ours, theirs = _train_section(update), _train_section(values)
        if ours.get(given) is not None and other not in ours and theirs.get(other) is not None:
            merged = merge(merged, {"train": {other: None}})
            if notes is not None:
                notes.append(f"train.{given}={ours[given]} replaces the recipe's train.{other}={theirs[other]}")
    return validate(from_dict(TrainConfig, merged))


def _train_section(values: Mapping[str, Any]) -> Mapping[str, Any]:
    train = values.get("train")
    return train if isinstance(train, Mapping) else {}


def load_config(path: str | Path | None, overrides: Sequence[str] = (), *, notes: list[str] | None = None) -> TrainConfig:
    """Read a YAML recipe (a file, or a shipped recipe by name such as ``demo``; the defaults when
    ``path`` is None) and apply overrides; ``notes`` receives how the overrides changed the recipe
    beyond their own keys (see :func:`config_from_mapping`)."""
    values: Any = {}
    if path is not None:
        path = find_recipe(path)
        try:
            text = path.read_text(encoding="utf-8")
            if not text.strip():
                raise ConfigError(f"{path} is empty; a recipe is a YAML mapping of sections like the shipped demo recipe")
            values = load_yaml(text) or {}
        except UnicodeDecodeError:
            raise ConfigError(f"{path} is not UTF-8 text; a recipe is a YAML file like the shipped demo recipe") from None
        except DuplicateKeyError as exc:
            line = exc.problem_mark.line + 1 if exc.problem_mark is not None else "?"
            raise ConfigError(
                f"{path}, line {line}: {exc.problem}; YAML would keep only the last one: delete one of them"
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"{path} is not valid YAML ({_yaml_problem(exc)}); fix the file (compare the shipped demo recipe)"
            ) from None
        if not isinstance(values, Mapping):
            raise ConfigError(f"{path}: the top level must be a mapping of sections (model:, data:, ...)")
    return config_from_mapping(values, overrides, notes=notes)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain (YAML-safe) nested dict: tuples become lists."""

    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(cfg))


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": 0.1}}`` -> ``{"optim.lr": 0.1}`` (mappings walked, other values kept)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def changed_keys(before: TrainConfig, after: TrainConfig) -> list[str]:
    """The dotted keys whose values differ between two configurations."""
    a, b = flatten(to_dict(before)), flatten(to_dict(after))
    return [k for k in a if a[k] != b.get(k)]


def dump_config(cfg: TrainConfig) -> str:
    """The resolved recipe as YAML (loads back to an equal config)."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
