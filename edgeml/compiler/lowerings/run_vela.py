"""Full-INT8 TFLite bytes + Vela options → Vela's output model, its summary CSV row and its console report.

Runs the `vela` command line of the installed ethos-u-vela (as `python -m ethosu.vela`, so the interpreter's
own install is used) in a scratch folder. Vela 5.2 prints no cycle count: the figures come from
`<output>/<net>_summary_<system-config>.csv`, and, with `--verbose-performance`, each operator's target
(NPU or CPU), cycles and MACs from `<output>/<net>_per-layer.csv`. `--config` needs `--system-config` and
`--memory-mode`; the config file defaults to Arm's `Arm/vela.ini` that ships inside the package. A float
model is refused before Vela runs: Vela would accept it and place every operator on the CPU.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgeml.compiler.lowerings.tflite_operators import tflite_operators
from edgeml.compiler.optional_dependency import import_optional
from edgeml.errors import TargetError

__all__ = ["VelaOptions", "VelaRun", "run_vela", "vela_configs"]

DEFAULT_CONFIG = "Arm/vela.ini"
_INT_TYPES = {"INT8", "UINT8", "INT16"}


@dataclass(frozen=True)
class VelaOptions:
    accelerator: str  # --accelerator-config, e.g. ethos-u55-128
    system_config: str
    memory_mode: str
    config_file: str = DEFAULT_CONFIG  # a path, or a name under Vela's bundled config_files/
    optimise: str = "Performance"


@dataclass(frozen=True)
class VelaRun:
    model: bytes  # <net>_vela.tflite
    summary: dict[str, str]  # the one row of <net>_summary_<system-config>.csv
    console: str  # stdout + stderr: per-operator warnings with Vela's reasons, the CPU/NPU operator counts
    per_layer: tuple[dict[str, str], ...] = ()  # rows of <net>_per-layer.csv: Target, Op Cycles, MAC Count, Name


def run_vela(tflite: bytes, options: VelaOptions, scratch: Path, needed_for: str) -> VelaRun:
    import_optional("ethosu.vela", "ethos-u", needed_for)
    refuse_float(tflite, needed_for)
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        net = Path(folder) / "model.tflite"
        net.write_bytes(tflite)
        out = Path(folder) / "vela"
        done = subprocess.run(_command(net, out, options), capture_output=True, text=True, check=False)
        console = done.stdout + done.stderr
        if done.returncode != 0 or not (out / "model_vela.tflite").exists():
            last = " | ".join(console.strip().splitlines()[-6:])
            raise TargetError(f"Vela failed on the INT8 model (exit {done.returncode}): {last}")
        with open(out / f"model_summary_{options.system_config}.csv", newline="") as f:
            summary = next(csv.DictReader(f))
        return VelaRun((out / "model_vela.tflite").read_bytes(), summary, console, _rows(out / "model_per-layer.csv"))


def _rows(path: Path) -> tuple[dict[str, str], ...]:
    if not path.exists():
        return ()
    with open(path, newline="") as f:
        return tuple(csv.DictReader(f))


def refuse_float(tflite: bytes, needed_for: str) -> None:
    """Vela runs integer operators only; a model with no integer operator would get 0% on the NPU."""
    ops = [op for op in tflite_operators(tflite) if op.output_dtypes]
    if ops and not any(set(op.output_dtypes) & _INT_TYPES for op in ops):
        raise TargetError(
            f"{needed_for}: this TFLite model is float ({len(ops)} operators, all FLOAT32): Vela would place every "
            'operator on the CPU ("Feature-map dataTypes must be one of {INT16, INT32, INT64, INT8, UINT8}"), '
            "so the Ethos-U NPU would run nothing",
            "quantize it to full INT8 first: compile the PyTorch model for this target (litert-torch PT2E), "
            "or quantize the float TFLite with ai-edge-quantizer (static int8 activations and weights)",
        )


def vela_configs(config_file: str = DEFAULT_CONFIG) -> tuple[set[str], set[str]]:
    """(system configs, memory modes) defined in a Vela .ini file."""
    import configparser

    parser = configparser.ConfigParser()
    parser.read(_config_path(config_file))
    systems = {s.removeprefix("System_Config.") for s in parser.sections() if s.startswith("System_Config.")}
    modes = {s.removeprefix("Memory_Mode.") for s in parser.sections() if s.startswith("Memory_Mode.")}
    return systems, modes


def _config_path(config_file: str) -> str:
    if Path(config_file).is_file():
        return config_file
    import ethosu  # a namespace package: its bundled configs sit in config_files/ beside vela/

    return str(Path(next(iter(ethosu.__path__))) / "config_files" / config_file)


def _command(net: Path, out: Path, options: VelaOptions) -> list[str]:
    return [
        sys.executable, "-m", "ethosu.vela", str(net),
        "--output-dir", str(out),
        "--accelerator-config", options.accelerator,
        "--config", options.config_file,
        "--system-config", options.system_config,
        "--memory-mode", options.memory_mode,
        "--optimise", options.optimise,
        "--show-cpu-operations",
        "--verbose-performance",
    ]  # fmt: skip
