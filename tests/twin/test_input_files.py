"""The one reader every input file goes through (twin.config): what it refuses, and the line and reason it names."""

from __future__ import annotations

import pytest

from twin.config import MAX_YAML_BYTES, ConfigError, read_yaml_mapping


def refusal(tmp_path, content: bytes, read=read_yaml_mapping) -> str:
    path = tmp_path / "input.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        read(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


def test_a_valid_mapping_is_read_with_its_nodes(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_bytes("\ufeffname: Park\nlist: [1, 2.5, 2026-07-01]\nanchored: &a {x: 1}\nagain: *a\n".encode())
    document = read_yaml_mapping(path)
    assert document.data["name"] == "Park" and document.data["again"] == {"x": 1}
    assert document.root.start_mark.line == 0  # the byte-order mark is dropped


@pytest.mark.parametrize(("content", "expected"), [
    (b"a: 1\nb: \xff\n", "line 2: byte 8 (0xff) is not UTF-8 text; save the file as UTF-8"),
    (b"a: 1\n\nb: \xc3(\n", "line 3: byte 9 (0xc3) is not UTF-8 text"),
    (b"a: 1\nb: x\x00y\n", "line 2: byte 9 is NUL: a binary file, not text"),
    (b"- 1\n- 2\n", "the file must hold a mapping of fields at the top level"),
    (b"", "the file must hold a mapping of fields at the top level"),
    (b"a: [1\n", "not valid YAML"),
])
def test_text_that_is_not_a_yaml_mapping_is_refused_with_its_line(tmp_path, content, expected):
    assert expected in refusal(tmp_path, content)


def test_nesting_deeper_than_32_levels_is_refused_before_any_recursion(tmp_path):
    """100,000 levels made the YAML composer raise RecursionError; 32 levels are read, 33 refused."""
    assert read_yaml_mapping_of(tmp_path, b"a: " + b"[" * 31 + b"]" * 31).data["a"] is not None
    assert refusal(tmp_path, b"a: " + b"[" * 32 + b"]" * 32) == "line 1: nested more than 32 levels deep"
    assert refusal(tmp_path, b"a: " + b"[" * 100_000 + b"]" * 100_000) == "line 1: nested more than 32 levels deep"
    block = b"a:\n" + b"".join(b" " * (i + 1) + b"k:\n" for i in range(40))
    assert refusal(tmp_path, block) == "line 33: nested more than 32 levels deep"


def read_yaml_mapping_of(tmp_path, content: bytes):
    path = tmp_path / "ok.yaml"
    path.write_bytes(content)
    return read_yaml_mapping(path)


def test_aliases_are_expanded_for_the_limits(tmp_path):
    """Nine levels of ten aliases each are 10**9 values to validate: refused, as is an alias inside itself
    and nesting that only aliases make deep."""
    laughs = b"a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + b"".join(
        b"a%d: &a%d [" % (i, i) + b", ".join([b"*a%d" % (i - 1)] * 10) + b"]\n" for i in range(1, 10))
    assert "more than 1,000,000 values once aliases are expanded" in refusal(tmp_path, laughs)
    assert refusal(tmp_path, b"a: &a [1, *a]\n") == "line 1: an alias inside the value it names"
    deep = b"a: &a " + b"[" * 20 + b"]" * 20 + b"\nb: " + b"[" * 20 + b"*a" + b"]" * 20 + b"\n"
    assert "nested more than 32 levels deep once aliases are expanded" in refusal(tmp_path, deep)


@pytest.mark.parametrize(("value", "expected"), [
    (b"9" * 100_000, "line 1: an integer of 100,000 characters is too large (at most 30 digits)"),
    (b"-" + b"9" * 31, "line 1: an integer of 32 characters is too large"),
    (b"2026-02-30", "line 1: '2026-02-30' is not a valid date or time"),
    (b"!!int abc", "line 1: 'abc' is not a valid integer"),
    (b"!!float .", "line 1: '.' is not a valid number"),
    (b"!!bool maybe", "line 1: 'maybe' is not a valid boolean"),
    (b"!!timestamp noon", "line 1: 'noon' is not a valid date or time"),
    (b"!!python/object:os.system ls", "line 1: not valid YAML: could not determine a constructor"),
])
def test_scalars_that_python_cannot_build_are_refused_with_their_line(tmp_path, value, expected):
    assert refusal(tmp_path, b"a: " + value + b"\n").startswith(expected)


def test_a_30_digit_integer_is_still_read(tmp_path):
    assert read_yaml_mapping_of(tmp_path, b"a: " + b"9" * 30).data["a"] == 10**30 - 1


def test_a_yaml_file_beyond_its_size_cap_is_refused_unread(tmp_path):
    assert refusal(tmp_path, b"a: 1\n" + b"#" * MAX_YAML_BYTES) == "the file is larger than 8 MiB"
