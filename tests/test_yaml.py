"""The one reader of user YAML/JSON files (`modelshield._yaml`): every failure is one neutral error naming the
file, never a parser traceback, and no Python object tag is ever constructed."""

from __future__ import annotations

import pytest

from modelshield._yaml import MAX_YAML_BYTES, load_yaml_file
from modelshield.errors import DataError, InputNotFoundError, PolicyError, UserError


def test_reads_yaml_and_json(tmp_path):
    (tmp_path / "a.yaml").write_text("a: 1\nb: [x, y]\n")
    (tmp_path / "b.json").write_text('{"a": 1, "b": ["x", "y"]}')
    assert load_yaml_file(tmp_path / "a.yaml", "config file") == {"a": 1, "b": ["x", "y"]}
    assert load_yaml_file(str(tmp_path / "b.json"), "config file") == {"a": 1, "b": ["x", "y"]}


def test_an_empty_file_is_none(tmp_path):
    (tmp_path / "e.yaml").write_text("")
    assert load_yaml_file(tmp_path / "e.yaml", "policy file") is None


@pytest.mark.parametrize("make", ["missing", "folder"])
def test_a_path_that_is_not_a_file_is_not_found(tmp_path, make):
    path = tmp_path / "p.yaml"
    if make == "folder":
        path.mkdir()
    with pytest.raises(InputNotFoundError, match=r"^policy file not found: .*p\.yaml$"):
        load_yaml_file(path, "policy file", error=PolicyError)


@pytest.mark.parametrize("error", [UserError, PolicyError, DataError])
def test_invalid_yaml_raises_the_callers_error_with_the_parsers_first_line(tmp_path, error):
    path = tmp_path / "bad.yaml"
    path.write_text("a: [unclosed\n")
    with pytest.raises(error, match=r"^thing .*bad\.yaml is not valid YAML: \S") as ei:
        load_yaml_file(path, "thing", error=error)
    assert type(ei.value) is error and "\n" not in str(ei.value)


def test_python_object_tags_are_refused_not_constructed(tmp_path):
    path = tmp_path / "tag.yaml"
    path.write_text("x: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(UserError, match="is not valid YAML"):
        load_yaml_file(path, "config file")


def test_undecodable_bytes_are_one_error(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"a: \xff\xfe\n")
    with pytest.raises(PolicyError, match=r"^policy file .*latin\.yaml cannot be read: UnicodeDecodeError$"):
        load_yaml_file(path, "policy file", error=PolicyError)


@pytest.mark.parametrize("extra", [0, 1])
def test_the_size_limit_is_inclusive(tmp_path, extra):
    path = tmp_path / "big.yaml"
    limit = 64
    path.write_text("#" * (limit - 1) + "\n" + "#" * extra)
    if extra:
        with pytest.raises(UserError, match=r"big\.yaml is 65 bytes, larger than the 64 allowed"):
            load_yaml_file(path, "bounds file", max_bytes=limit)
    else:
        assert load_yaml_file(path, "bounds file", max_bytes=limit) is None


def test_the_default_limit_is_eight_mib():
    assert MAX_YAML_BYTES == 8 * 1024 * 1024
