"""Shared fixtures: an isolated config/cache folder per test, a signing key pair, the bundled examples."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "examples" / "digits"


@pytest.fixture(autouse=True)
def isolated_edgeml_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("edgeml-home")
    monkeypatch.setenv("EDGEML_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("EDGEML_CACHE_DIR", str(home / "cache"))
    return home


@pytest.fixture(scope="session")
def keypair(tmp_path_factory):
    from edgeml.artifact import create_keypair

    return create_keypair(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def releases(tmp_path_factory, keypair):
    """digits 1.2.3 and 1.3.0 for cpu-ort, signed with the fleet's key."""
    import edgeml

    root = tmp_path_factory.mktemp("releases")
    cache = tmp_path_factory.mktemp("release-cache")
    out = {}
    for version in ("1.2.3", "1.3.0"):
        edgeml.compile(
            str(DIGITS / "model.onnx"), "cpu-ort", key=keypair[0], out=root / version, cache_dir=cache,
            version=version, name="digits", options={"precision": "fp32"},
        )  # fmt: skip
        out[version] = root / version
    return out


@pytest.fixture(scope="session")
def digits_artifact(tmp_path_factory, keypair):
    """One compiled digits artifact shared by read-only tests (each test that changes it copies it first)."""
    import edgeml

    out = tmp_path_factory.mktemp("artifacts") / "digits"
    cache = tmp_path_factory.mktemp("shared-cache")
    edgeml.compile(str(DIGITS / "model.onnx"), "cpu-ort", key=keypair[0], out=out, cache_dir=cache, version="1.2.3")
    return out


class Mosquitto:
    """A real Mosquitto on a free loopback port, started and stopped by the tests (CI installs it)."""

    def __init__(self, folder: Path) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.conf = folder / "mosquitto.conf"
        # NOTE: `user root` keeps a root-started broker from dropping to the `mosquitto` user, which could not
        # read the password and ACL files the tests write under pytest's private temp folders
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\n")
        self.log = folder / "mosquitto.log"
        self.proc = None

    def start(self) -> None:
        import shutil
        import socket
        import subprocess
        import time

        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        assert Path(binary).exists(), "mosquitto is not installed: apt-get install -y mosquitto (see .ci/run)"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([binary, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not start; see {self.log}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(tmp_path)
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def minilm():
    """all-MiniLM-L6-v2 exported to ONNX with its calib/eval sets, prepared once into the user's cache folder
    (EDGEML_TEST_CACHE_DIR, else e.g. ~/.cache/edgeml-tests/minilm; `prepare` skips what is up to date), never
    into the source tree."""
    return _load(ROOT / "examples" / "minilm" / "prepare.py").prepare(_test_cache() / "minilm", quiet=True)


def _test_cache() -> Path:
    """Where tests keep prepared data between runs: EDGEML_TEST_CACHE_DIR, else the user's cache folder."""
    import os

    import platformdirs

    return Path(os.environ.get("EDGEML_TEST_CACHE_DIR") or platformdirs.user_cache_dir("edgeml-tests"))


@pytest.fixture(scope="session")
def int8_models():
    """tests/int8_sensitive_models.py: seeded models whose INT8 sensitivity is the same on every CPU."""
    return _load(ROOT / "tests" / "int8_sensitive_models.py")


@pytest.fixture(scope="session")
def sensitive_cnn(int8_models, tmp_path_factory):
    """A conv classifier whose head INT8 must damage, with its calibration and evaluation sets."""
    return int8_models.sensitive_cnn(tmp_path_factory.mktemp("sensitive-cnn"))


@pytest.fixture(scope="session")
def sensitive_transformer(int8_models, tmp_path_factory):
    """A one-block transformer whose ffn_down dynamic INT8 must damage, with its calibration and evaluation sets."""
    return int8_models.sensitive_transformer(tmp_path_factory.mktemp("sensitive-transformer"))


def _load(path: Path):
    """The module at `path` (a file outside any package: an example script, a test helper), imported once."""
    import importlib.util
    import sys

    name = f"_edgeml_tests_{path.stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # NOTE: before exec: dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"  # the machines' PostgreSQL (trust auth); CI starts one


@pytest.fixture
def postgres_url():
    """A fleet database URL on the local PostgreSQL in a fresh schema of its own (dropped after the test), so
    tests never share state. EDGEML_TEST_POSTGRES overrides the server; an unreachable one fails the test."""
    import os
    import uuid

    import psycopg  # NOTE: no importorskip: a missing driver fails loudly (pip install 'edgeml[postgres]')

    base = os.environ.get("EDGEML_TEST_POSTGRES", POSTGRES)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(base, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {base} is not reachable ({exc}); start it (.ci/run does), or EDGEML_TEST_POSTGRES")
    admin.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    admin.execute(f"DROP SCHEMA {schema} CASCADE")
    admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """The fleet database, once on SQLite (a file) and once on PostgreSQL (a fresh schema)."""
    if request.param == "sqlite":
        return str(tmp_path / "fleet.sqlite")
    return request.getfixturevalue("postgres_url")
