"""What a careless user hit on a fresh clone (issue 11 §2), through the real `edgeml` command in subprocesses:
--force never deletes a user's file, bad ids and options fail before anything is built, tables stay readable
at 80 columns and in a pipe, one speed reference per figure, each message once, third-party chatter in a
log, and the host every latency was measured on."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from edgeml.host import ISA_FEATURES, host_info

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"
MODEL = str(DIGITS / "model.onnx")
FP32 = ["-O", "precision=fp32", "--calib-samples", "32"]  # for the items that do not depend on quantization


def edgeml(*args, cwd, env=None, check=True, columns=80):
    """The installed `edgeml` script; stdout and stderr are pipes (not a terminal), COLUMNS as given."""
    full_env = {**os.environ, "COLUMNS": str(columns), **(env or {})}
    done = subprocess.run(["edgeml", *map(str, args)], cwd=cwd, capture_output=True, text=True, env=full_env)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A fresh config folder (no signing key yet) and cache, shared by this module's compiles."""
    root = tmp_path_factory.mktemp("home")
    return {"EDGEML_CONFIG_DIR": str(root / "config"), "EDGEML_CACHE_DIR": str(root / "cache")}


@pytest.fixture(scope="module")
def digits(tmp_path_factory, home):
    """`edgeml compile` of the digits model for cpu-ort, auto precision (fp32 and int8-static measured), read
    as a user reads it: piped, 80 columns, on the first run (so it creates the signing key)."""
    cwd = tmp_path_factory.mktemp("digits")
    fresh = {"EDGEML_CONFIG_DIR": str(cwd / "config")}
    done = edgeml("compile", MODEL, "--out", "art", cwd=cwd, env=home | fresh)
    return {"out": cwd / "art", "stdout": done.stdout, "stderr": done.stderr, "cwd": cwd}


# --- --force and --out -----------------------------------------------------------------------------------------


def test_force_refuses_a_folder_that_holds_a_users_file_and_deletes_nothing(tmp_path):
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "my-notes.txt").write_text("mine")
    done = edgeml("compile", MODEL, "--out", "build", "--force", *FP32, cwd=tmp_path, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "my-notes.txt" in done.stderr and "nothing was deleted" in done.stderr
    assert (tmp_path / "build" / "my-notes.txt").read_text() == "mine"
    for i in range(7):
        (tmp_path / "build" / f"n{i}.txt").write_text("x")
    many = edgeml("compile", MODEL, "--out", "build", "--force", "--json", cwd=tmp_path, check=False)
    assert "and 3 more" in json.loads(many.stdout)["error"]  # 8 files: five named, then a count
    assert len(list((tmp_path / "build").iterdir())) == 8


def test_force_replaces_an_artifact_but_not_one_a_user_added_to(tmp_path):
    edgeml("compile", MODEL, "--out", "art", *FP32, cwd=tmp_path)
    again = edgeml("compile", MODEL, "--out", "art", *FP32, cwd=tmp_path, check=False)
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr
    edgeml("compile", MODEL, "--out", "art", "--force", *FP32, cwd=tmp_path)  # an artifact: replaced
    (tmp_path / "art" / "extra").mkdir()
    (tmp_path / "art" / "extra" / "plot.png").write_bytes(b"\x89PNG")
    refused = edgeml("compile", MODEL, "--out", "art", "--force", *FP32, cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "extra/plot.png" in refused.stderr
    assert (tmp_path / "art" / "extra" / "plot.png").exists() and (tmp_path / "art" / "manifest.json").exists()


def test_out_is_never_the_current_folder_or_one_above(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "keep.txt").write_text("x")
    for out in (".", "..", str(work)):
        done = edgeml("compile", MODEL, "--out", out, "--force", *FP32, cwd=work, check=False)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert "error:" in done.stderr and "folder" in done.stderr and "hint:" in done.stderr
    assert sorted(p.name for p in work.iterdir()) == ["keep.txt"]


# --- everything checked before anything is built ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--targets", "cpu-ort,jetson"], "unknown target 'jetson': nothing was built"),
        (["--targets", "cpu-ort,cpu-openvino", "-O", "cpu-openvino.no_such=1"], "no option 'no_such'"),
        (["--targets", "cpu-ort,cpu-openvino", "-O", "precision=int8-static"], "cpu-openvino option precision"),
        (["--targets", "cpu-ort,cpu-openvino", "-O", "jetson.shape=x:1"], "scoped to jetson"),
        (["--targets", "cpu-ort,cpu-ort"], "listed twice"),
        (["--target", "cpu-ort", "-O", "calibrate_method=median"], "calibrate_method"),
    ],
)
def test_bad_target_ids_and_options_fail_before_any_build(tmp_path, args, message):
    done = edgeml("compile", MODEL, *args, cwd=tmp_path, check=False)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not (tmp_path / "build").exists()


def test_an_existing_output_of_a_later_target_fails_before_the_first_is_built(tmp_path):
    (tmp_path / "multi" / "cpu-openvino").mkdir(parents=True)
    done = edgeml("compile", MODEL, "--targets", "cpu-ort,cpu-openvino", "--out", "multi", cwd=tmp_path, check=False)
    assert done.returncode == 2 and "multi/cpu-openvino already exists" in done.stderr
    assert sorted(p.name for p in (tmp_path / "multi").iterdir()) == ["cpu-openvino"]


# --- the README's tour runs as written ----------------------------------------------------------------------------


def _readme_block(after: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("```bash\n", text.index(after)) + len("```bash\n")
    return text[start : text.index("```", start)]


def _tour() -> list[str]:
    """Command 1 of "The two commands", then every line of "A short tour" (continuations joined, comments cut)."""
    first = _readme_block("## The two commands").strip().split("&& ")[-1]
    lines = _readme_block("## A short tour").replace("\\\n", " ").splitlines()
    return [first] + [re.sub(r"\s+#.*$", "", line).strip() for line in lines if line.strip()]


def _run_tour(cwd: Path, skip: tuple[str, ...] = ()) -> list[str]:
    import shlex

    (cwd / "examples").symlink_to(ROOT / "examples")
    ran = []
    for command in _tour():
        if any(s in command for s in skip):
            continue
        args = shlex.split(command)
        assert args[0] == "edgeml", command
        done = edgeml(*args[1:], cwd=cwd, check=False, columns=120)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        ran.append(command)
    return ran


def test_readme_tour_runs_after_command_one_and_a_recipe_reproduces_name_and_version(tmp_path):
    """The compiles from ONNX (PyTorch conversions and pruning: the slow test below)."""
    ran = _run_tour(tmp_path, skip=("model.pt2", "digits_cnn:"))
    assert any("--recipe" in c for c in ran) and len(ran) >= 9
    first = json.loads((tmp_path / "build/digits-1.0.0/manifest.json").read_text())
    again = json.loads((tmp_path / "build/digits-1.0.0-again/manifest.json").read_text())
    assert (again["name"], again["version"], again["release"]) == ("digits", "1.0.0", first["release"])
    assert again["provenance"]["recipe"] == first["provenance"]["recipe"]
    assert again["signature"]["key_id"] == first["signature"]["key_id"]
    # flags win over the manifest; another key than the manifest's is said
    other = edgeml("compile", MODEL, "--recipe", "build/digits-1.0.0/manifest.json", "--version", "1.0.1",
                   "--out", "build/other", cwd=tmp_path)  # fmt: skip
    manifest = json.loads((tmp_path / "build/other/manifest.json").read_text())
    assert (manifest["name"], manifest["version"]) == ("digits", "1.0.1")
    assert f"the manifest this recipe came from was signed with key {first['signature']['key_id']}" in other.stdout


@pytest.mark.slow
def test_readme_tour_runs_as_written_every_line(tmp_path):
    ran = _run_tour(tmp_path)
    assert ran == _tour()
    assert {p.name for p in (tmp_path / "build" / "digits").iterdir()} >= {"cpu-ort", "tflite-cpu", "ethos-u55-128"}


# --- readable at 80 columns and in a pipe ------------------------------------------------------------------------


def test_targets_at_80_columns_in_a_pipe_keep_every_value_whole(tmp_path):
    listed = json.loads(edgeml("targets", "--json", cwd=tmp_path).stdout)
    text = edgeml("targets", cwd=tmp_path).stdout
    lines = text.splitlines()
    assert "…" not in text and "┃" not in text
    for t in listed:
        assert t["id"] in lines and any(t["description"] in line for line in lines), t["id"]
    options = json.loads(edgeml("targets", "--options", "cpu-ort", "--json", cwd=tmp_path).stdout)
    text = edgeml("targets", "--options", "cpu-ort", cwd=tmp_path).stdout
    assert all(o["name"] in text.splitlines() and o["help"] in text for o in options)
    wide = edgeml("targets", cwd=tmp_path, columns=400).stdout
    assert "┃" in wide  # a table where it fits


def test_compile_and_explain_at_80_columns_keep_every_value_whole(digits, home):
    out = digits["stdout"]
    assert "…" not in out
    manifest = json.loads((digits["out"] / "manifest.json").read_text())
    for name in manifest["decision"]["candidates"]:
        assert name in out.splitlines(), name  # a record per candidate, its name whole
    explain = edgeml("explain", digits["out"], cwd=digits["cwd"], env=home).stdout
    report = json.loads(edgeml("explain", digits["out"], "--json", cwd=digits["cwd"], env=home).stdout)
    assert not re.search(r"\S…(\s|$)", explain) and "┃" not in explain  # no cell cut short ("0…6.03" is a range)
    for rows in report["layers"].values():
        for row in rows[:15]:
            assert f"#{row['sensitivity_rank']}\n  layer: {row['layer']} · op: {row['op']}" in explain


def test_multi_target_summary_at_80_columns(tmp_path):
    done = edgeml("compile", MODEL, "--targets", "cpu-ort,cpu-openvino", *FP32, "--out", "multi", cwd=tmp_path)
    lines = done.stdout.splitlines()
    assert "…" not in done.stdout and {"cpu-ort", "cpu-openvino"} <= set(lines)
    assert any("artifact or error: multi/cpu-openvino" in line for line in lines)


# --- one reference per figure ---------------------------------------------------------------------------------------


def _speeds(stdout: str) -> tuple[dict[str, str], dict[str, str]]:
    """From compile's output at 80 columns: each record's speed column, and the figure each verdict quotes."""
    records = re.split(r"\n(?=\S)", stdout)
    heads = {r.split("\n", 1)[0]: r for r in records}
    table = {h: m.group(1) for h, r in heads.items() if (m := re.search(r"speed vs fp32: ([\d.]+×)", r))}
    verdicts = dict(re.findall(r"^  (\S+): (?:shipped|passes|rejected): ([\d.]+×) float speed", stdout, re.M))
    return table, verdicts


def test_the_speed_column_and_the_verdicts_use_one_named_reference(digits, tmp_path, home):
    table, verdicts = _speeds(digits["stdout"])
    assert verdicts and {k: table[k] for k in verdicts} == verdicts
    assert "speed: p50 of fp32, this target's float build (onnxruntime)" in digits["stdout"]
    # OpenVINO: its fp32 IR and the ONNX Runtime source run at different speeds; one reference all the same
    ov = edgeml("compile", MODEL, "--target", "cpu-openvino", *FP32, "--out", "ov", cwd=tmp_path, env=home)
    table, verdicts = _speeds(ov.stdout)
    assert table["fp32"] == verdicts["fp32"] == "1.00×"
    report = json.loads(edgeml("explain", "ov", "--json", cwd=tmp_path, env=home).stdout)
    assert report["speed_reference"] == "fp32" and report["candidates"][0]["speedup"] == 1.0
    assert "vs fp32" in edgeml("explain", "ov", cwd=tmp_path, env=home, columns=400).stdout
    assert "(1.00× fp32)" in edgeml("inspect", "ov", cwd=tmp_path, env=home, columns=400).stdout


def test_bench_calls_a_difference_within_the_noise_the_same(digits, home):
    done = edgeml("bench", digits["out"], "--baseline", digits["out"], "--seconds", "1", "--json",
                  cwd=digits["cwd"], env=home)  # fmt: skip
    comparison = json.loads(done.stdout)["comparison"]
    assert comparison["verdict"] == "same"  # one model against itself
    assert comparison["low"] <= comparison["ratio"] <= comparison["high"]
    text = edgeml("bench", digits["out"], "--baseline", digits["out"], "--seconds", "1", cwd=digits["cwd"], env=home)
    assert "the same speed as the baseline" in text.stdout and "slower" not in text.stdout


# --- said once; the data and the host named ---------------------------------------------------------------------


def test_signing_key_creation_is_said_once_and_the_data_is_named(digits):
    both = digits["stdout"] + digits["stderr"]
    assert both.count("created a signing key") == 1
    assert f"calibrated on {DIGITS / 'calib.npz'} (256 samples" in digits["stdout"]
    assert f"evaluated on {DIGITS / 'eval.npz'} (400 samples, labelled)" in digits["stdout"]


def test_the_build_host_is_named_in_the_output_the_manifest_and_explain(digits, home):
    host = host_info()
    assert f"latency measured on the build host ({host.describe()}, " in digits["stdout"]
    assert "not on the target device" in digits["stdout"]
    measured_on = json.loads((digits["out"] / "manifest.json").read_text())["metrics"]["measured_on"]
    assert measured_on["isa"] == list(host.isa) and set(measured_on["isa"]) <= set(ISA_FEATURES)
    assert measured_on["description"] == host.describe() and measured_on["threads"] == 1
    report = json.loads(edgeml("explain", digits["out"], "--json", cwd=digits["cwd"], env=home).stdout)
    assert report["host"]["isa"] == list(host.isa)
    explained = edgeml("explain", digits["out"], cwd=digits["cwd"], env=home).stdout
    assert f"latency measured on the build host ({host.describe()}" in explained


# --- third-party output: in the compile log, shown with -v ----------------------------------------------------


def test_third_party_output_goes_to_the_compile_log_and_v_shows_it(tmp_path, home):
    """LiteRT's C++ runtime prints "Created TensorFlow Lite XNNPACK delegate" to fd 2 when an interpreter
    starts; torch and torchao log warnings on import. Without -v none of it reaches the user: a compile where
    one target fails names the log that holds it."""
    data = ["--calib", DIGITS / "calib.npz", "--eval", DIGITS / "eval.npz", "--calib-samples", "32"]
    env = home | {"EDGEML_CACHE_DIR": str(tmp_path / "cache")}
    quiet = edgeml("compile", DIGITS / "model.pt2", "--targets", "tflite-cpu,npu-openvino", *data,
                   "-O", "tflite-cpu.precision=fp32", "-O", "npu-openvino.shape=x:1x3x8x8", "--out", "a",
                   cwd=tmp_path, env=env, check=False)  # fmt: skip
    assert quiet.returncode == 2 and (tmp_path / "a" / "tflite-cpu" / "manifest.json").exists()
    assert "XNNPACK" not in quiet.stdout + quiet.stderr and "WARNING" not in quiet.stdout + quiet.stderr
    log = Path(re.search(r"third-party output of this compile: (\S+\.log)", quiet.stderr).group(1))
    assert log.parent == tmp_path / "cache" / "logs" and "XNNPACK delegate" in log.read_text()
    loud = edgeml("compile", DIGITS / "model.pt2", "--target", "tflite-cpu", *data, "-O", "precision=fp32",
                  "--out", "b", "--no-cache", "-v", cwd=tmp_path, env=env)  # fmt: skip
    assert "XNNPACK delegate" in loud.stderr and "third-party output" not in loud.stderr
    assert "shipped" in loud.stdout
