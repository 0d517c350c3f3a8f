"""This host's own socket and process tables (/proc), read without touching the sockets themselves."""

from __future__ import annotations

import os
from pathlib import Path

LISTEN = "0A"
RPC_SERVER_NAMES = ("rpc-server", "ggml-rpc-server")
MAX_ARGV0_BYTES = 4096  # PATH_MAX: a program's path is no longer


def listening_inodes(port: int, proc: Path = Path("/proc")) -> set[int]:
    """Inodes of TCP sockets in LISTEN state on `port` (IPv4 and IPv6)."""
    inodes = set()
    for table in ("net/tcp", "net/tcp6"):
        try:
            lines = (proc / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != LISTEN:
                continue
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(int(fields[9]))
    return inodes


def socket_owners(inodes: set[int], proc: Path = Path("/proc")) -> dict[int, set[str]] | None:
    """{pid: the names of the process} of the processes holding these sockets; None if /proc could not be searched."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    owners: dict[int, set[str]] = {}
    denied = False
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            for fd in os.scandir(f"{entry.path}/fd"):
                if os.readlink(fd.path) in wanted:
                    owners[int(entry.name)] = _names(Path(entry.path))
                    break
        except PermissionError:
            denied = True
        except OSError:
            continue
    if not owners and denied:
        return None
    return owners


def _names(process: Path) -> set[str]:
    """The executable's file name, the name it was started by (a symlink's, say) and the kernel's short name."""
    names = set()
    try:
        names.add(os.path.basename(os.readlink(process / "exe")))
    except OSError:
        pass
    try:
        with open(process / "cmdline", "rb") as cmdline:  # the whole command line can be megabytes: its start will do
            argv0 = cmdline.read(MAX_ARGV0_BYTES).split(b"\0", 1)[0]
        names.add(os.path.basename(argv0.decode("utf-8", "replace")))
    except OSError:
        pass
    try:
        names.add((process / "comm").read_text().strip())
    except OSError:
        pass
    names.discard("")
    return names


def rpc_server_listening(port: int, proc: Path = Path("/proc")) -> tuple[bool, str]:
    """Whether an rpc-server (either binary name) listens on `port`, and why not."""
    inodes = listening_inodes(port, proc)
    if not inodes:
        return False, "nothing listens on the port"
    owners = socket_owners(inodes, proc)
    if owners is None:
        return True, "listening (owner not visible to this user)"
    names = set().union(*owners.values())
    if names & set(RPC_SERVER_NAMES):
        return True, "rpc-server listening"
    return False, f"port held by {', '.join(sorted(names)) or 'an unknown process'}"
