"""Talking to Ceph without the `ceph` CLI, whose python start-up costs 0.5-1 s a call on two
cores (measured, see docs/cephfs.md):

- admin_socket(): a daemon's or ceph-fuse's admin socket, a Unix socket in <base>/run, so it
  works from any network namespace and even while the daemon's site is partitioned. The
  protocol: send the JSON command and a NUL byte; read a 4-byte big-endian length and that
  many bytes of reply.
- MonSession: one long-lived helper process in the admin namespace that holds a librados
  connection (python3-rados, Debian's) and answers mon and mgr commands, one JSON line each,
  in milliseconds instead of a CLI start per command.
"""
from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
from pathlib import Path

from . import system


class CephError(RuntimeError):
    def __init__(self, what: str, rc: int = -1, out: str = ""):
        super().__init__(what)
        self.rc = rc
        self.out = out


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise CephError(f"admin socket closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def admin_socket(path: Path, command: dict, timeout_s: float = 5.0):
    """Run one admin-socket command; returns the parsed JSON reply (or the text if not JSON)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        try:
            s.connect(str(path))
        except OSError as e:
            raise CephError(f"admin socket {path}: {e.strerror}", rc=-e.errno) from None
        s.sendall(json.dumps(command).encode() + b"\0")
        try:
            (length,) = struct.unpack(">I", _recv_exact(s, 4))
            data = _recv_exact(s, length)
        except socket.timeout:
            raise CephError(f"admin socket {path}: no answer to {command.get('prefix')} "
                            f"in {timeout_s:g} s") from None
    text = data.decode(errors="replace")
    try:
        return json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return text


def try_admin_socket(path: Path, command: dict, timeout_s: float = 2.0):
    """Like admin_socket() but None when the daemon is not there or does not answer."""
    try:
        return admin_socket(path, command, timeout_s)
    except (CephError, OSError):
        return None


# The helper that runs in the admin namespace (a script without imports of ours).
_HELPER = Path(__file__).resolve().with_name("rados_helper.py")


class MonSession:
    """A librados connection living in the admin namespace. Not thread-safe: one caller."""

    def __init__(self, admin_ns: str, conf: Path, connect_timeout_s: float = 30):
        self._proc = subprocess.Popen(
            system.in_netns(admin_ns, ["/usr/bin/python3", str(_HELPER), str(conf),
                                       str(int(connect_timeout_s))]),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        hello = self._proc.stdout.readline()
        if not hello:
            err = self._proc.stderr.read()
            raise CephError(f"rados helper in {admin_ns} did not start: {err.strip()}")
        msg = json.loads(hello)
        if msg.get("rc") != 0:
            self.close()
            raise CephError(f"rados helper in {admin_ns}: {msg.get('err')}", rc=msg.get("rc", -1))

    def command(self, cmd: dict, target: str = "mon", timeout_s: float = 30,
                check: bool = True) -> tuple[int, str, str]:
        line = json.dumps({"target": target, "cmd": cmd, "timeout": timeout_s})
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()
        reply = self._proc.stdout.readline()
        if not reply:
            raise CephError(f"rados helper died during {cmd.get('prefix')}: "
                            f"{self._proc.stderr.read().strip()}")
        r = json.loads(reply)
        if check and r["rc"] != 0:
            raise CephError(f"ceph {cmd.get('prefix')}: rc {r['rc']}: {r['err'].strip()}",
                            rc=r["rc"], out=r["out"])
        return r["rc"], r["out"], r["err"]

    def json(self, cmd: dict, target: str = "mon", timeout_s: float = 30):
        _, out, _ = self.command({**cmd, "format": "json"}, target, timeout_s)
        return json.loads(out) if out.strip() else None

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
