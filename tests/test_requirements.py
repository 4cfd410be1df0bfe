"""The pinned requirement files: runtime pins are a subset of the development pins, and the
server's file holds no test tool (README "Dependencies")."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pins(name):
    out = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        assert "==" in line, f"{name}: unpinned line {line!r}"
        pkg, version = line.split("==", 1)
        out[pkg.split("[")[0].strip().lower().replace("_", "-")] = version.split(";")[0].strip()
    return out


def test_runtime_pins_are_the_development_pins():
    runtime, dev = pins("requirements.txt"), pins("requirements-dev.txt")
    assert "tornado" in runtime and "mongomock-motor" in runtime
    different = {k: (v, dev.get(k)) for k, v in runtime.items() if dev.get(k) != v}
    assert different == {}


def test_server_requirements_hold_no_test_tools():
    runtime = pins("requirements.txt")
    assert not {"pytest", "pytest-tornado", "moto", "aiosmtpd", "ruff"} & set(runtime)
    assert {"pytest", "pytest-tornado", "moto", "aiosmtpd", "ruff"} <= set(pins("requirements-dev.txt"))


def test_every_input_is_compiled():
    runtime, dev = pins("requirements.txt"), pins("requirements-dev.txt")
    for name, compiled in (("requirements.in", runtime), ("requirements-dev.in", dev)):
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("-"):
                continue
            pkg = line.split("[")[0].split("<")[0].split("=")[0].strip().lower().replace("_", "-")
            assert pkg in compiled, f"{pkg} of {name} is not in its compiled file"
