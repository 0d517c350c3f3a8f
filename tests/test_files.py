"""The one reader of the files the exporter is given: regular files of bounded size, anything else refused at once."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from sollol_exporter import files


def read_in_a_thread(path, limit=1024):
    """files.read_bytes(path), or the exception it raised; fails the test if it blocks."""
    outcome = []

    def run():
        try:
            outcome.append(files.read_bytes(str(path), limit))
        except OSError as err:
            outcome.append(err)

    reader = threading.Thread(target=run, daemon=True)
    reader.start()
    reader.join(5)
    if reader.is_alive() and os.path.exists(path):
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # a writer that leaves at once unblocks a FIFO read
        reader.join(5)
    assert outcome, "the read blocked"
    return outcome[0]


def test_a_regular_file_is_read_whole_up_to_the_limit(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 1024)
    assert files.read_bytes(str(path), 1024) == b"x" * 1024
    os.symlink(path, tmp_path / "link")  # as Kubernetes mounts a Secret
    assert files.read_bytes(str(tmp_path / "link"), 1024) == b"x" * 1024


def test_a_file_over_the_limit_is_refused_without_reading_it_all(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 1025)
    with pytest.raises(files.FileTooLarge) as caught:
        files.read_bytes(str(path), 1024)
    assert caught.value.strerror == "larger than 1024 bytes"


def test_a_fifo_without_a_writer_is_refused_at_once(tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    refused = read_in_a_thread(path)
    assert isinstance(refused, files.NotRegularFile) and refused.strerror == "not a regular file (a FIFO)"


def test_a_fifo_with_a_writer_is_refused_too(tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    reader_end = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    writer = os.open(path, os.O_WRONLY)
    try:
        os.write(writer, b"key\n")
        refused = read_in_a_thread(path)
        assert isinstance(refused, files.NotRegularFile)
    finally:
        os.close(writer)
        os.close(reader_end)


@pytest.mark.parametrize(("path", "kind"), [("/dev/null", "a character device"), ("/dev/zero", "a character device")])
def test_devices_are_refused(path, kind):
    refused = read_in_a_thread(path)
    assert isinstance(refused, files.NotRegularFile) and refused.strerror == f"not a regular file ({kind})"


def test_a_directory_and_a_socket_are_refused(tmp_path):
    assert read_in_a_thread(tmp_path).strerror == "not a regular file (a directory)"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(tmp_path / "sock"))
        assert read_in_a_thread(tmp_path / "sock").strerror == "not a regular file (a socket)"


def test_a_missing_file_gives_the_system_reason(tmp_path):
    with pytest.raises(FileNotFoundError) as caught:
        files.read_bytes(str(tmp_path / "absent"), 1024)
    assert files.reason(caught.value) == "No such file or directory"


def test_one_size_cap_for_every_file_a_config_names(tmp_path, monkeypatch):
    """The config file, the web config and the TLS files it names are all held to files.MAX_FILE_BYTES."""
    from sollol_exporter import config
    from sollol_exporter.web import tls
    from sollol_exporter.web.config import TLSSettings, WebConfigError
    from sollol_exporter.web.config import load as load_web

    monkeypatch.setattr(files, "MAX_FILE_BYTES", 100)
    big = tmp_path / "big.yml"
    big.write_text("# padding\n" * 11)
    with pytest.raises(config.ConfigError, match="larger than 100 bytes"):
        config.load(str(big), env={})
    with pytest.raises(WebConfigError, match="larger than 100 bytes"):
        load_web(str(big))
    with pytest.raises(WebConfigError, match=r"failed to read cert_file .*larger than 100 bytes"):
        tls.certificate_and_key(TLSSettings(cert_file=str(big), key_file=str(big)), "web.yml")
    big.write_text("# padding\n" * 10)
    assert config.load(str(big), env={}) and load_web(str(big)).tls is None
