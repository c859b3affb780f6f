"""YAML files people write (the catalog, quality.yml): read exactly, validated by pydantic models.

A problem is one line naming its place in the file, `plans[0].charges[1].unit_price (line 14): …`.
Numbers are exact (`0.001` is Decimal('0.001'), never a float) and a key given twice is refused
(YAML would keep the last without a word).
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class InvalidDocument(ValueError):
    """The file is unreadable or invalid; `problems` lists every reason, each with its place."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n  ".join(problems))


def read(path: Path) -> Any:
    """The file's document (an empty file is an empty mapping); mappings and lists know their lines."""
    try:
        document = yaml.load(path.read_text(), Loader=_Loader)
    except (OSError, yaml.YAMLError) as error:
        raise InvalidDocument([f"{path}: cannot read as YAML: {error}"]) from None
    return _Mapping() if document is None else document


def validated(model: type[Model], document: Any, *, secrets: Collection[str] = ()) -> Model:
    """The document as `model`; raises InvalidDocument with every problem. Values of the fields
    named in `secrets` are never shown."""
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise InvalidDocument([_problem(document, item, secrets) for item in error.errors()]) from None


def place(document: Any, loc: tuple) -> str:
    """`plans[0].charges[1] (line 12)`: a location as a path, with the line it is written on."""
    path, line = _locate(document, loc)
    return f"{path} (line {line})" if line else path


def _locate(document: Any, loc: tuple) -> tuple[str, int | None]:
    path, line, node = "", None, document
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
        try:
            line, node = node.lines[part], node[part]
        except (AttributeError, KeyError, IndexError, TypeError):
            node = None  # not written in the file (a missing key): keep the line of its parent
    return path or "the file", line


def _problem(document: Any, error: dict, secrets: Collection[str]) -> str:
    loc, kind = error["loc"], error["type"]
    if kind in {"missing", "extra_forbidden"}:  # the place is the mapping; the line the key's, if written
        path, line = _locate(document, loc[:-1])[0], _locate(document, loc)[1]
        where = f"{path} (line {line})" if line else path
        return f"{where}: '{loc[-1]}' is required" if kind == "missing" else f"{where}: unknown key '{loc[-1]}'"
    if kind == "value_error":
        return f"{place(document, loc)}: {error['ctx']['error']}"
    if error["input"] is None:
        return f"{place(document, loc)}: must not be null"
    message = {"model_type": "expected a mapping", "dict_type": "expected a mapping",
               "list_type": "expected a list"}.get(kind, error["msg"])
    if not set(secrets) & set(map(str, loc)):
        message += f", got {_shown(error['input'])}"
    return f"{place(document, loc)}: {message}"


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return repr(value) if isinstance(value, str) else str(value)


class _Mapping(dict):
    """A YAML mapping that knows the line of each of its keys."""

    lines: dict[Any, int]


class _List(list):
    """A YAML list that knows the line of each of its items."""

    lines: list[int]


# NOTE: libyaml's parser (C) where PyYAML has it: the pure-Python one takes about 3 ms per catalog
# entry, minutes at 100,000 customers.
class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    def construct_mapping(self, node, deep=False):
        mapping = _Mapping(super().construct_mapping(node, deep=True))
        mapping.lines = {}
        for key_node, _ in node.value:
            key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
            if key in mapping.lines:
                twice = f"key '{key}' is given twice (lines {mapping.lines[key]} and {line})"
                raise yaml.constructor.ConstructorError(None, None, twice, key_node.start_mark)
            mapping.lines[key] = line
        return mapping

    def construct_sequence(self, node, deep=False):
        items = _List(super().construct_sequence(node, deep=True))
        items.lines = [item.start_mark.line + 1 for item in node.value]
        return items


def _construct_decimal(loader: _Loader, node) -> Decimal:
    text = loader.construct_scalar(node).replace("_", "")
    # YAML's .inf and .nan become Decimal's, which the models refuse with their place
    return Decimal(text.replace(".", "", 1) if text.lower().lstrip("+-") in {".inf", ".nan"} else text)


_Loader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)
# NOTE: SafeLoader's own constructors copy into a plain dict and list, losing the lines.
_Loader.add_constructor("tag:yaml.org,2002:map", lambda loader, node: loader.construct_mapping(node))
_Loader.add_constructor("tag:yaml.org,2002:seq", lambda loader, node: loader.construct_sequence(node))
