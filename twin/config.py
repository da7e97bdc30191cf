"""Loading YAML config files into pydantic models, with errors people can act on.

Any invalid file is refused whole. The error names the file, the line, the
field path (with ids beside list indices, e.g. ``buildings[0 b1].assets[2 chiller1].cop_rated``)
and the reason. No traceback reaches the user: the CLI prints
:class:`ConfigError` and exits with code 2.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from twin.park import FieldPath, Park

ModelT = TypeVar("ModelT", bound=BaseModel)


class ConfigError(ValueError):
    """An input file that cannot be used, with every problem found in it: one line ``FILE: problem``, or
    ``FILE: invalid file (N problems)`` and one indented line per problem."""

    def __init__(self, path: str | Path, problems: Sequence[str]):
        self.path = str(path)
        self.problems = list(problems)
        if len(self.problems) == 1:
            super().__init__(f"{self.path}: {self.problems[0]}")
            return
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{self.path}: invalid file ({len(self.problems)} problems)\n{lines}")


MAX_YAML_BYTES = 8 * 2**20
"""Largest YAML input file read (bytes); a park, a point map or a users file is a few hundred KiB at most."""
MAX_CSV_BYTES = 64 * 2**20
"""Largest CSV input file read (bytes); a year of one-minute weather rows is about 40 MB."""
MAX_NESTING_DEPTH = 32
"""Deepest nesting of mappings and sequences in a YAML file; the deepest schema (a park's
buildings, assets, extra points) nests 5 levels."""
MAX_YAML_NODES = 1_000_000
"""Most values a YAML file may hold once its aliases are expanded (a file of aliases of aliases
would otherwise make validation walk billions of values)."""
MAX_INTEGER_DIGITS = 30
"""Longest integer read; no field takes a number near 10**30 (Python refuses to even read
integers above 4,300 digits)."""

YAML_INT = "tag:yaml.org,2002:int"
YAML_TYPED_SCALARS = {YAML_INT: "integer", "tag:yaml.org,2002:float": "number", "tag:yaml.org,2002:bool": "boolean",
                      "tag:yaml.org,2002:timestamp": "date or time"}
"""Scalar types, by YAML tag, whose constructors raise plain Python errors on a bad value (an explicit
``!!int abc``, an impossible date such as 2026-02-30), so each is built once on its own to name its line."""


def read_input_text(path: str | Path, max_bytes: int = MAX_YAML_BYTES) -> str:
    """The text of an input file: at most ``max_bytes``, no NUL (a binary file), UTF-8 (a leading byte-order
    mark dropped).

    Raises ConfigError naming the file, and the line and byte offset of a byte that is not text.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ConfigError(path, [f"cannot read file: {exc.strerror or exc}"]) from None
    if len(data) > max_bytes:
        raise ConfigError(path, [f"the file is larger than {max_bytes // 2**20} MiB"])
    nul = data.find(b"\0")
    if nul >= 0:
        raise ConfigError(path, [f"line {_line_of(data, nul)}: byte {nul} is NUL: a binary file, not text"])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [(f"line {_line_of(data, exc.start)}: byte {exc.start} "
                                 f"(0x{data[exc.start]:02x}) is not UTF-8 text; save the file as UTF-8")]) from None


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML input file: its top-level mapping and the node tree it was built from (for lines)."""

    path: Path
    data: dict
    root: yaml.Node


def read_yaml_mapping(path: str | Path) -> YamlDocument:
    """Read and parse a YAML input file whose top level is a mapping of fields.

    Refused with ConfigError naming the file and the line: an unreadable or oversized file, text
    that is not UTF-8, invalid YAML, nesting deeper than :data:`MAX_NESTING_DEPTH`, more than
    :data:`MAX_YAML_NODES` values after alias expansion, an alias inside the node it names,
    integers longer than :data:`MAX_INTEGER_DIGITS` digits, impossible dates, and a top level
    that is not a mapping.
    """
    path = Path(path)
    text = read_input_text(path)
    try:
        _check_nesting(path, text)
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            if root is not None:
                _check_nodes(path, root, loader)
                data = loader.construct_document(root)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise ConfigError(path, [f"{where}not valid YAML: {getattr(exc, 'problem', None) or exc}"]) from None
    if root is None or not isinstance(data, dict):
        raise ConfigError(path, ["the file must hold a mapping of fields at the top level"])
    return YamlDocument(path, data, root)


def validate_document(document: YamlDocument, model: type[ModelT],
                      extra_checks: Callable[[ModelT], list[tuple[FieldPath, str]]] | None = None) -> ModelT:
    """Validate a parsed file as ``model``; raise ConfigError naming every problem with its line and field."""
    data, root = document.data, document.root
    try:
        obj = model.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(err["loc"], _reason(err), data, root) for err in exc.errors(include_url=False)]
        raise ConfigError(document.path, problems) from None
    if extra_checks is not None:
        issues = extra_checks(obj)
        if issues:
            raise ConfigError(document.path, [_describe(loc, reason, data, root) for loc, reason in issues])
    return obj


def load_yaml_model(
    path: str | Path,
    model: type[ModelT],
    extra_checks: Callable[[ModelT], list[tuple[FieldPath, str]]] | None = None,
) -> ModelT:
    """Read a YAML file and validate it as ``model``; raise ConfigError naming every problem."""
    return validate_document(read_yaml_mapping(path), model, extra_checks)


def _check_nesting(path: Path, text: str) -> None:
    """Refuse nesting deeper than MAX_NESTING_DEPTH from the parser's events (the parser does not recurse;
    building nodes does, so this runs first)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING_DEPTH:
                mark = event.start_mark
                where = f"line {mark.line + 1}: " if mark is not None else ""
                raise ConfigError(path, [f"{where}nested more than {MAX_NESTING_DEPTH} levels deep"])
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_nodes(path: Path, root: yaml.Node, loader: yaml.SafeLoader) -> None:
    """Walk the node graph once (aliases share nodes): expanded size, expanded depth, cycles, scalars."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        children = _children(node)
        if children_done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(child)] for child in children)
            depth[key] = 1 + max((depth[id(child)] for child in children), default=0)
            where = f"line {node.start_mark.line + 1}: "
            if size[key] > MAX_YAML_NODES:
                raise ConfigError(path, [f"{where}more than {MAX_YAML_NODES:,} values once aliases are expanded"])
            if depth[key] > MAX_NESTING_DEPTH + 1:
                raise ConfigError(path, [(f"{where}nested more than {MAX_NESTING_DEPTH} levels deep once "
                                         "aliases are expanded")])
            continue
        if key in size:
            continue
        on_path.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in on_path:
                raise ConfigError(path, [f"line {child.start_mark.line + 1}: an alias inside the value it names"])
            if id(child) not in size:
                stack.append((child, False))
        if isinstance(node, yaml.ScalarNode):
            _check_scalar(path, node, loader)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_scalar(path: Path, node: yaml.ScalarNode, loader: yaml.SafeLoader) -> None:
    where = f"line {node.start_mark.line + 1}: "
    if node.tag == YAML_INT and len(node.value.lstrip("+-").replace("_", "")) > MAX_INTEGER_DIGITS:
        raise ConfigError(path, [(f"{where}an integer of {len(node.value):,} characters is too large "
                                 f"(at most {MAX_INTEGER_DIGITS} digits)")])
    if node.tag in YAML_TYPED_SCALARS:
        try:
            loader.yaml_constructors[node.tag](loader, node)
        except (ValueError, KeyError, AttributeError, TypeError, OverflowError) as exc:
            raise ConfigError(path, [(f"{where}{node.value[:40]!r} is not a valid {YAML_TYPED_SCALARS[node.tag]}"
                                     f" ({type(exc).__name__}: {exc})")]) from None


def load_park(path: str | Path) -> Park:
    """Load and fully validate a park file. Relative paths inside it are resolved against its folder."""
    park = load_yaml_model(path, Park, Park.consistency_issues)
    base = Path(path).resolve().parent
    updates: dict[str, Any] = {}
    if park.tariff:
        updates["tariff"] = str(_resolve(base, park.tariff))
    if park.point_maps:
        updates["point_maps"] = str(_resolve(base, park.point_maps))
    if park.weather.file:
        updates["weather"] = park.weather.model_copy(update={"file": str(_resolve(base, park.weather.file))})
    if park.weather_forecast.file:
        updates["weather_forecast"] = park.weather_forecast.model_copy(
            update={"file": str(_resolve(base, park.weather_forecast.file))})
    if park.history and park.history.startswith("sqlite:///") and not park.history.startswith("sqlite:////"):
        updates["history"] = "sqlite:///" + str(_resolve(base, park.history.removeprefix("sqlite:///")))
    problems = []
    if "tariff" in updates and not Path(updates["tariff"]).is_file():
        problems.append(f"tariff: file not found: {updates['tariff']}")
    if "point_maps" in updates and not Path(updates["point_maps"]).is_dir():
        problems.append(f"point_maps: folder not found: {updates['point_maps']}")
    if "weather" in updates and not Path(updates["weather"].file).is_file():
        problems.append(f"weather.file: file not found: {updates['weather'].file}")
    if "weather_forecast" in updates and not Path(updates["weather_forecast"].file).is_file():
        problems.append(f"weather_forecast.file: file not found: {updates['weather_forecast'].file}")
    if problems:
        raise ConfigError(path, problems)
    return park.model_copy(update=updates)


def _resolve(base: Path, relative: str) -> Path:
    candidate = Path(relative).expanduser()
    return candidate if candidate.is_absolute() else base / candidate


def _reason(err: ErrorDetails) -> str:
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] in ("missing",):
        return "required field is missing"
    if err["type"] == "extra_forbidden":
        return "unknown field (check the spelling)"
    if "input" in err and err["type"] not in ("union_tag_invalid",) and not isinstance(err["input"], (dict, list)):
        return f"{message} (got {err['input']!r})"
    return message


def _describe(loc: FieldPath, reason: str, data: Any, root: yaml.Node | None) -> str:
    """``line N: path: reason`` with ids shown beside list indices."""
    parts: list[str] = []
    node: Any = data
    yaml_node = root
    line: int | None = yaml_node.start_mark.line + 1 if yaml_node is not None else None
    for key in loc:
        if isinstance(key, int) and isinstance(node, list) and 0 <= key < len(node):
            node = node[key]
            ident = node.get("id") if isinstance(node, dict) else None
            parts.append(f"[{key} {ident}]" if ident else f"[{key}]")
            yaml_node = yaml_node.value[key] if isinstance(yaml_node, yaml.SequenceNode) else None
        elif isinstance(key, str) and isinstance(node, dict) and key in node:
            node = node[key]
            parts.append(f".{key}" if parts else key)
            yaml_node = _mapping_value(yaml_node, key)
        elif key == "[key]":  # pydantic's marker of a refused mapping key: the key itself is at fault
            parts.append(" (the name)")
            continue
        else:
            # a tagged-union branch name, or a field that is absent
            if isinstance(key, str) and not _is_union_tag(key, node):
                parts.append(f".{key}" if parts else key)
            continue
        if yaml_node is not None:
            line = yaml_node.start_mark.line + 1
    path = "".join(parts) or "(top level)"
    where = f"line {line}: " if line is not None else ""
    return f"{where}{path}: {reason}"


def _mapping_value(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for key_node, value_node in node.value:
        if getattr(key_node, "value", None) == key:
            return value_node
    return None


def _is_union_tag(key: str, node: Any) -> bool:
    """pydantic puts the discriminator value (e.g. 'chiller') into the path; hide it."""
    return isinstance(node, dict) and node.get("kind") == key
