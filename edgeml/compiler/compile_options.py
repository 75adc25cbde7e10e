"""Every option of a compile, once: its type, default, one-line help and the key a recipe file holds it under.

`edgeml compile`'s flags (edgeml/cli/compile_flags.py), the recipe-file parsing (recipe_file.py), the recipe a
manifest records (`provenance.recipe`, the same shape) and the defaults `compile_model` applies all come from
`COMPILE_OPTIONS`. A setting comes from the caller (a flag), else the recipe file, else the default here:

    resolve_options(model, target, given)  →  CompileOptions (frozen), what the compile pipeline reads
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeml.compiler.pruning.prune_model import PruneRequest
from edgeml.compiler.recipe_file import RecipeFile, load_recipe_file
from edgeml.compiler.select_candidate import DEFAULT_MIN_AGREEMENT, Budget

__all__ = [
    "COMPILE_OPTIONS", "DEFAULT_CALIB_SAMPLES", "DEFAULT_VERSION", "CompileOption", "CompileOptions",
    "default_name_of", "option_named", "recipe_keys", "resolve_options",
]  # fmt: skip

DEFAULT_CALIB_SAMPLES = 256
DEFAULT_VERSION = "0.1.0"
_GENERIC_FOLDERS = {"build", "dist", "out", "output", "models", "model", "onnx", "export", "exported"}


@dataclass(frozen=True)
class CompileOption:
    name: str  # compile_model's keyword
    help: str  # one line; "{default}" in it is replaced by the default, else "[default: …]" is appended
    type: type = str  # what a flag's value is parsed as (bool: a switch)
    default: Any = None  # applied when neither the caller nor the recipe file gives one
    recipe: str = ""  # its key in a recipe file and a manifest's recipe: "target", "budget.max_drop"; "": none
    flag: str = ""  # the CLI flag; "" → --name-with-dashes
    short: str = ""
    metavar: str | None = None
    multiple: bool = False  # a repeatable flag, parsed into the option's value by the CLI

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    def help_text(self) -> str:
        if "{default}" in self.help:
            return self.help.format(default=self.default)
        shown = self.default is not None and self.type is not bool and not self.multiple
        return f"{self.help} [default: {self.default}]" if shown else self.help


COMPILE_OPTIONS: tuple[CompileOption, ...] = (
    CompileOption("target", "Target id (see `edgeml targets`); default: this host's CPU (cpu-ort).", short="-t",
                  recipe="target"),
    CompileOption("calib", "Calibration data: .npz/.npy/.csv, image folder, or module:function. Default: calib.npz "
                  "beside the model."),
    CompileOption("eval_data", "Held-out evaluation data (labels optional). Default: eval.npz beside the model, else "
                  "the calibration set.", flag="--eval"),
    CompileOption("key", "Ed25519 signing key. Default: one under your config folder, created on first use.",
                  type=Path),
    CompileOption("name", "Artifact name. Default: the --recipe manifest's, else the model file's stem."),
    CompileOption("version", "Semantic version of this artifact. Default: the --recipe manifest's, else {default}.",
                  default=DEFAULT_VERSION),
    CompileOption("release", "Release number (default: derived from --version).", type=int),
    CompileOption("out", "Output folder. Default: build/NAME-TARGET.", short="-o"),
    CompileOption("force", "Replace --out if it exists.", type=bool, default=False),
    CompileOption("recipe_file", "Recipe (TOML/YAML/JSON: target, budget, options), or a manifest.json to reproduce "
                  "(its recipe, name and version); flags win over it.", type=Path, flag="--recipe"),
    CompileOption("max_drop", "Accuracy budget: most top-1 points lost vs float (needs labels in --eval).",
                  type=float, default=1.0, recipe="budget.max_drop"),
    CompileOption("min_cosine", "Fidelity floor without labels: cosine vs float of every channel of every output, "
                  "over all samples.", type=float, default=0.99, recipe="budget.min_cosine"),
    CompileOption("min_channel_cosine", "Floor for any single output channel's cosine vs float (a destroyed channel "
                  "group).", type=float, default=0.9, recipe="budget.min_channel_cosine"),
    CompileOption("min_agreement", "Share of a probability output's decisions (sigmoid: p > 0.5; softmax: top-1) "
                  "that must agree with float, labels or not.", type=float, default=DEFAULT_MIN_AGREEMENT,
                  recipe="budget.min_agreement"),
    CompileOption("options", "Target option (repeatable); `edgeml targets --options TARGET` lists them.",
                  type=dict, recipe="options", flag="--option", short="-O", metavar="KEY=VALUE", multiple=True),
    CompileOption("inputs", "Where an input's samples lie, or its constant (repeatable): state:batch_axis=1, "
                  "sr:constant=16000, mask:batch_axis=none (fed one sample at a time), state:from_output=stateN "
                  "(closed loop: fed back from that output, sequences from the data's edgeml_sequences). Default: "
                  "the data's own edgeml_inputs entry, else inferred.", type=dict, recipe="inputs", flag="--input",
                  short="-I", metavar="NAME:KEY=VALUE", multiple=True),
    CompileOption("threads", "Threads for host measurements.", type=int, default=1),
    CompileOption("max_memory", "Memory the compile may use (e.g. 4G): activations stream in chunks that fit, and a "
                  "compile that cannot fit stops with an error. Default: a safe share of this machine's available "
                  "memory."),
    CompileOption("calib_samples", "Calibration samples drawn (seeded) from --calib.", type=int,
                  default=DEFAULT_CALIB_SAMPLES, recipe="calib_samples"),
    CompileOption("prune", "Prune the PyTorch model before export: channels:0.3 (structured, torch-pruning; on a "
                  "transformer, whole attention heads and FFN channels, the hidden size kept), channels:macs=0.5 (the "
                  "least channel pruning that halves the MACs), magnitude:0.5 (unstructured, global L1; "
                  "magnitude:0.5:per-layer for each layer alone).", metavar="KIND:RATIO", recipe="prune.spec"),
    CompileOption("finetune", "Recover after --prune by distillation from the float model on this data (.npz; labels "
                  "optional).", recipe="prune.finetune"),
    CompileOption("finetune_hook", "Recover after --prune with your own training: FUNCTION(model, data, teacher) → "
                  "model or None.", metavar="MODULE:FUNCTION", recipe="prune.hook"),
    CompileOption("finetune_epochs", "Distillation epochs after --prune.", type=int, default=PruneRequest.epochs,
                  recipe="prune.epochs"),
    CompileOption("cache_dir", "Pass cache folder (or EDGEML_CACHE_DIR). Default: your cache folder."),
    CompileOption("no_cache", "Recompute every step.", type=bool, default=False),
)  # fmt: skip


def option_named(name: str) -> CompileOption:
    return next(o for o in COMPILE_OPTIONS if o.name == name)


def recipe_keys(section: str = "") -> set[str]:
    """The keys a recipe file takes at its top level (section ""), or in one of its tables ("budget", "prune")."""
    paths = [o.recipe for o in COMPILE_OPTIONS if o.recipe]
    if not section:
        return {p.partition(".")[0] for p in paths}
    return {p.partition(".")[2] for p in paths if p.startswith(section + ".")}


@dataclass(frozen=True)
class CompileOptions:
    """One compile's settings: the caller's, else the recipe file's, else the defaults (nothing checked yet but
    the recipe file's shape: each check runs where the pipeline has what it needs)."""

    model: str
    target: str | None  # None: the default target
    options: dict[str, Any]  # the target's options, as given (the target turns them into its recipe)
    inputs: dict[str, Any]
    budget: Budget
    max_drop_given: bool  # an accuracy budget asked for: it needs labels
    calib_samples: int
    name: str
    version: str
    release: int | None  # None: from the version
    prune: tuple[str | None, str | None, str | None, int | None]  # spec, finetune, hook, epochs
    file: RecipeFile
    calib: str | os.PathLike[str] | None = None
    eval_data: str | os.PathLike[str] | None = None
    key: str | os.PathLike[str] | None = None
    out: str | os.PathLike[str] | None = None
    force: bool = False
    recipe_file: str | os.PathLike[str] | None = None
    threads: int = 1
    cache_dir: str | os.PathLike[str] | None = None
    no_cache: bool = False
    max_memory: str | int | None = None  # '4G' or bytes; None: a safe share of the machine (memory_budget.py)

    def recipe_record(self, target_id: str, recipe: dict[str, Any], pruning: PruneRequest | None) -> dict[str, Any]:
        """The recipe the manifest records: the shape of a recipe file, with what this compile resolved."""
        return (
            {"target": target_id, "calib_samples": self.calib_samples, "budget": self.budget.to_dict(),
             "options": recipe}
            | ({"prune": pruning.to_dict()} if pruning else {})
            | ({"inputs": self.inputs} if self.inputs else {})
        )  # fmt: skip


def resolve_options(model: str, target: str | None, given: dict[str, Any]) -> CompileOptions:
    """`given` (compile_model's keywords) → each setting from the caller, else the recipe file, else the default."""
    known = {o.name for o in COMPILE_OPTIONS}
    unknown = sorted(set(given) - known)
    if unknown:
        raise TypeError(f"compile_model() got an unexpected keyword argument {unknown[0]!r}")
    file = load_recipe_file(given["recipe_file"]) if given.get("recipe_file") is not None else RecipeFile()

    def pick(name: str, from_file: Any = None) -> Any:
        return next(v for v in (given.get(name), from_file, option_named(name).default) if v is not None)

    budget = Budget(*(pick(n, file.budget.get(n)) for n in ("max_drop", "min_cosine", "min_channel_cosine",
                                                            "min_agreement")))  # fmt: skip
    version = given.get("version") or file.version or DEFAULT_VERSION
    plain = {n: given[n] for n in ("calib", "eval_data", "key", "out", "recipe_file", "cache_dir", "max_memory")
             if n in given}  # fmt: skip
    return CompileOptions(
        model=model, target=target or file.target, options={**file.options, **(given.get("options") or {})},
        inputs={**file.inputs, **(given.get("inputs") or {})}, budget=budget,
        max_drop_given=given.get("max_drop") is not None, calib_samples=pick("calib_samples", file.calib_samples),
        name=given.get("name") or file.name or default_name_of(model), version=version, release=given.get("release"),
        prune=_prune_group(given, file), file=file, force=bool(given.get("force")), threads=pick("threads"),
        no_cache=bool(given.get("no_cache")), **plain,
    )  # fmt: skip


def default_name_of(model: str) -> str:
    """The file's stem; for a generic stem like `model.onnx`, its folder's name (examples/digits → digits)."""
    if ":" in model and not os.path.exists(model):
        return model.rpartition(":")[2]
    path = Path(model).resolve()
    stem = path.name.split(".")[0]
    if stem not in ("model", ""):
        return stem
    folder = next((p.name for p in path.parents if p.name and p.name not in _GENERIC_FOLDERS), "")
    return folder or "model"


def _prune_group(given: dict[str, Any], file: RecipeFile) -> tuple[Any, Any, Any, Any]:
    """From the flags, else from the recipe file's [prune] table: the four go together."""
    if given.get("prune") is None and file.prune:
        return file.prune.get("spec"), file.prune.get("finetune"), file.prune.get("hook"), file.prune.get("epochs")
    return given.get("prune"), given.get("finetune"), given.get("finetune_hook"), given.get("finetune_epochs")
