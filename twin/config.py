"""Loading YAML config files into pydantic models, with errors people can act on.

Any invalid file is refused whole. The error names the file, the line, the
field path (with ids beside list indices, e.g. ``buildings[0 b1].assets[2 chiller1].cop_rated``)
and the reason. No traceback reaches the user: the CLI prints
:class:`ConfigError` and exits with code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from twin.park import FieldPath, Park

ModelT = TypeVar("ModelT", bound=BaseModel)


class ConfigError(ValueError):
    """An input file that cannot be used, with every problem found in it."""

    def __init__(self, path: str | Path, problems: Sequence[str]):
        self.path = str(path)
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{self.path}: invalid file ({len(self.problems)} problem(s))\n{lines}")


def load_yaml_model(
    path: str | Path,
    model: type[ModelT],
    extra_checks: Callable[[ModelT], list[tuple[FieldPath, str]]] | None = None,
) -> ModelT:
    """Read a YAML file and validate it as ``model``; raise ConfigError naming every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [f"cannot read file: {exc.strerror or exc}"]) from None
    try:
        data = yaml.safe_load(text)
        root_node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise ConfigError(path, [f"{where}not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if not isinstance(data, dict):
        raise ConfigError(path, ["the file must hold a mapping of fields at the top level"])
    try:
        obj = model.model_validate(data)
    except ValidationError as exc:
        problems = [
            _describe(err["loc"], _reason(err), data, root_node) for err in exc.errors(include_url=False)
        ]
        raise ConfigError(path, problems) from None
    if extra_checks is not None:
        issues = extra_checks(obj)
        if issues:
            raise ConfigError(path, [_describe(loc, reason, data, root_node) for loc, reason in issues])
    return obj


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


def _reason(err: dict) -> str:
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
