"""nginx for the tests: the `nginx` binary (skipping nothing: CI installs it) and
`config/nginx.conf` rendered for test ports."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest


def render_config(text: str, prefix: Path, port: int, upstreams: list[int], user: str) -> str:
    """`config/nginx.conf` with its ``[test]`` lines pointed at `prefix`, `port` and
    `upstreams`, in the foreground, temp files under `prefix`. Fails when a marked line is
    missing, so the test never runs a configuration other than the one in the repo."""
    servers = re.findall(r"^[ \t]*server 127\.0\.0\.1:\d+ ([^;]*);.*\[test\]$", text, re.M)
    assert len(servers) >= 2, "nginx.conf: no `server 127.0.0.1:<port> ...; # [test]` lines"
    substitutions = [
        (r"^user \S+;.*\[test\]$", f"user {user};"),
        (r"^pid \S+;.*\[test\]$", f"pid {prefix}/nginx.pid;"),
        (r"^error_log \S+( \w+)?;.*\[test\]$", f"error_log {prefix}/error.log info;"),
        (r"^([ \t]*)access_log \S+ hwc3d;.*\[test\]$", rf"\g<1>access_log {prefix}/access.log hwc3d;"),
        (r"^([ \t]*)listen 80;.*\[test\]$", rf"\g<1>listen 127.0.0.1:{port};"),
        (r"^([ \t]*)server 127\.0\.0\.1:\d+ ([^;]*);.*\[test\]\n(?:[ \t]*server 127\.0\.0\.1:.*\[test\]\n)*",
         "".join(rf"\g<1>server 127.0.0.1:{p} \g<2>;" + "\n" for p in upstreams)),
        (r"^http \{$", "http {\n" + "".join(
            f"    {kind}_temp_path {prefix}/{kind}_temp;\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))),
    ]
    for pattern, replacement in substitutions:
        text, count = re.subn(pattern, replacement, text, flags=re.M)
        assert count == 1, f"nginx.conf: expected one line matching {pattern!r}, found {count}"
    return "daemon off;\n" + text


def nginx_binary() -> str:
    binary = shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if binary is None:
        pytest.fail("nginx is not installed: install Debian's package `nginx` "
                    "(apt-get install -y nginx; .ci/run does it on CI)")
    return binary
