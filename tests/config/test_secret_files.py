"""Key files: what --config.check says about each coordinator's api_key_file, without the key."""

import os

from sollol_exporter.config import CoordinatorConfig
from sollol_exporter.config.secret_files import unreadable_key_files


def test_a_readable_key_file_and_none_at_all_are_fine(tmp_path):
    key = tmp_path / "key"
    key.write_text("s3cret-key\n")
    assert unreadable_key_files([CoordinatorConfig(api_key_file=str(key)), CoordinatorConfig()]) == []


def test_each_unusable_key_file_is_one_line_naming_the_coordinator_and_why(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big"
    big.write_bytes(b"k" * 70_000)
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe-s3cret")
    ok = tmp_path / "ok"
    ok.write_text("fine")
    coordinators = [CoordinatorConfig(api_key_file=str(p)) for p in (tmp_path / "missing", fifo, ok, big, binary, tmp_path)]
    problems = unreadable_key_files(coordinators)
    assert [p.split(":", 1)[0] for p in problems] == [f"coordinators[{i}].api_key_file" for i in (0, 1, 3, 4, 5)]
    assert "No such file" in problems[0]
    assert "not a regular file" in problems[1] and "not a regular file" in problems[4]
    assert "larger than" in problems[2]
    assert "not UTF-8" in problems[3]
    assert not any("s3cret" in p for p in problems)


def test_with_the_config_file_each_line_names_its_file_and_line(tmp_path):
    missing = tmp_path / "missing"
    path = tmp_path / "config.yml"
    path.write_text(f"coordinators:\n  - url: http://127.0.0.1:1\n  - url: http://127.0.0.1:2\n\n    api_key_file: {missing}\n")
    problems = unreadable_key_files([CoordinatorConfig(), CoordinatorConfig(api_key_file=str(missing))], str(path))
    assert len(problems) == 1
    assert problems[0].startswith(f"config.yml:5: coordinators[1].api_key_file: {missing}: No such file"), problems


def test_an_empty_key_file_is_said_too(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("  \n")
    [problem] = unreadable_key_files([CoordinatorConfig(api_key_file=str(empty))])
    assert problem.endswith("empty: no key would be sent")
