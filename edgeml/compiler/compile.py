"""`edgeml compile`: a model source → one signed, verified-on-write artifact for one target.

    options → target and recipe → source → data (intake, calibration, evaluation) → prune → check → plan
    → prepare passes → candidates (build, accuracy-aware search, measure, select, explain) → manifest → write

`compile_model` reads as that list, one line per step; each step is a function below. The options come from
one schema (compile_options.py): the caller's, else the recipe file's, else its defaults.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeml.artifact.keys import create_keypair, load_private_key, public_path_for
from edgeml.artifact.manifest import release_from_version
from edgeml.artifact.npz import npz_bytes
from edgeml.artifact.writer import check_output_free, write_artifact
from edgeml.calibration.dataset import Dataset
from edgeml.calibration.example_inputs import example_inputs
from edgeml.calibration.input_layout import parse_input_specs
from edgeml.calibration.read_dataset import read_dataset
from edgeml.compiler.build_manifest import SELF_TEST_FILE, build_manifest
from edgeml.compiler.choose_candidate import Chosen, choose_candidate
from edgeml.compiler.closed_loop import with_float_states_of
from edgeml.compiler.compile_options import CompileOptions, default_name_of, resolve_options
from edgeml.compiler.content_cache import Blob, ContentCache, cache_key
from edgeml.compiler.device_latency import LatencyOnDevice, speed_ordered, with_device_latency
from edgeml.compiler.explain_report import EXPLAIN_FILE
from edgeml.compiler.intake import IntakeResult, ModelSource, identify_source, take_in
from edgeml.compiler.measure import WHOLE_FEED, Measurements
from edgeml.compiler.memory_budget import memory_budget, parse_memory_size
from edgeml.compiler.passes.base import PassContext
from edgeml.compiler.plan import Plan
from edgeml.compiler.progress import NullProgress, Progress
from edgeml.compiler.pruning.prune_model import PruneRequest, prune_model
from edgeml.compiler.pruning.pruning_summary import pruning_summary
from edgeml.compiler.recipe_file import RecipeFile, load_recipe_file
from edgeml.compiler.run_passes import PassRecord, run_passes
from edgeml.compiler.select_candidate import Budget, Decision
from edgeml.compiler.shape_from_data import shape_from_data
from edgeml.compiler.tool_versions import tool_versions
from edgeml.errors import CalibrationError, EdgemlError, ModelIntakeError, TargetError
from edgeml.locations import cache_dir as default_cache_dir
from edgeml.locations import default_key_path
from edgeml.targets import default_target_id, load_target, rules_digest
from edgeml.targets.check_report import CheckReport
from edgeml.targets.source_kinds import check_source_kind
from edgeml.targets.target import Target
from edgeml.targets.target_spec import TargetSpec

__all__ = ["CompileResult", "compile_model", "default_name", "default_out"]

_EXPORT_TOOLS = {True: ("torch", "onnxscript"), False: ()}


@dataclass
class CompileResult:
    out: Path
    manifest: dict[str, Any]
    decision: Decision
    passes: list[PassRecord]
    notes: list[str] = field(default_factory=list)
    cache_hits: int = 0
    steps: int = 0
    seconds: float = 0.0

    @property
    def fully_cached(self) -> bool:
        return self.cache_hits == self.steps

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "name": self.manifest["name"],
            "version": self.manifest["version"],
            "target": self.manifest["target"]["id"],
            "precision": self.decision.chosen,
            "decision": self.decision.to_dict(),
            "metrics": self.manifest["metrics"],
            "passes": [r.to_dict() for r in self.passes],
            "notes": self.notes,
            "cache": {"hits": self.cache_hits, "steps": self.steps},
            "seconds": round(self.seconds, 3),
        }


def compile_model(
    model: str | os.PathLike[str],
    target: str | None = None,
    *,
    progress: Progress | None = None,
    latency_on_device: LatencyOnDevice | None = None,
    **given: Any,
) -> CompileResult:
    """Compile `model` for `target` into a signed artifact folder at `out`; see `edgeml compile --help`.
    `given`: the options of COMPILE_OPTIONS (edgeml/compiler/compile_options.py) by name; settings not given come
    from `recipe_file` (a recipe file or a manifest), then from the defaults there.
    `inputs` says, per input, where its samples lie or its constant: {"state": {"batch_axis": 1}}.
    `latency_on_device`: a hook that times the candidates on a device (device_latency.py); its figures then
    decide speed and the manifest says where each was measured. None: the build host measures, as always."""
    started = time.perf_counter()
    progress = progress or NullProgress()
    notes: list[str] = []
    opts = resolve_options(str(model), target, given)
    target_obj = load_target(opts.target or default_target_id())
    recipe = target_obj.recipe(opts.options)
    out_path, release = _placed(opts, target_obj.id)
    pruning = PruneRequest.of(*opts.prune)
    source = _source_for(opts, target_obj.spec, pruning)  # NOTE: a missing or unreadable model is reported first
    signing_key = load_private_key(opts.key) if opts.key is not None else None  # a bad --key fails before any work
    cache = ContentCache(None if opts.no_cache else default_cache_dir(opts.cache_dir))
    data = _read_data(opts, source, cache, progress, notes)
    recipe, shape_note = shape_from_data(recipe, data.intake.signature, data.calib, target_obj.id)
    notes += [shape_note] if shape_note else []
    model_onnx, pruned = _pruned(pruning, source, data, cache, progress, notes)
    proto, check_report = _check_target(target_obj, model_onnx, recipe, cache, progress)
    notes += list(check_report.notes)
    plan = target_obj.plan(proto, recipe)
    notes += [n for n in plan.notes if n not in notes]  # NOTE: a plan may repeat what its check reported
    drafts = _Drafts(opts, target_obj, recipe, plan, pruning, data, release) if latency_on_device else None
    records, chosen = _build_and_choose(
        opts, target_obj, recipe, plan, model_onnx, data, cache, progress, drafts and drafts.step(latency_on_device)
    )
    if pruned is not None:
        chosen.explain["pruning"] = pruning_summary(
            pruned.report, chosen.measured.models, data.intake.onnx.data, pruned.onnx.data if pruned.onnx else None
        )
    records += chosen.records[chosen.decision.chosen]
    manifest = _manifest(opts, target_obj, recipe, plan, pruning, data, records, chosen, release)
    signed = _sign_and_write(opts, out_path, chosen, manifest, signing_key, notes, progress)
    all_records = records + [r for c, rs in chosen.records.items() if c != chosen.decision.chosen for r in rs]
    steps = [r.cached for r in all_records] + [data.intake.cached] * (data.intake.exporter is not None)
    steps += [chosen.measured.cached]
    return CompileResult(
        out_path, signed, chosen.decision, records, notes, sum(steps), len(steps), time.perf_counter() - started
    )


@dataclass(frozen=True)
class _Data:
    """The model taken in, and the data it is calibrated and evaluated on."""

    intake: IntakeResult
    calib: Dataset
    evalset: Dataset
    inputs: dict[str, Any]


def _placed(opts: CompileOptions, target_id: str) -> tuple[Path, int]:
    """Where the artifact goes and its release number; the budget checked (before any work)."""
    release = opts.release if opts.release is not None else _release(opts.version)
    out_path = Path(opts.out) if opts.out else default_out(opts.name, target_id)
    check_output_free(out_path, opts.force)
    _check_budget(opts.budget)
    if opts.max_memory is not None:
        parse_memory_size(opts.max_memory)  # NOTE: a bad size fails before any work
    return out_path, release


def _source_for(opts: CompileOptions, spec: TargetSpec, pruning: PruneRequest | None) -> ModelSource:
    source = identify_source(opts.model)
    check_source_kind(spec, source.kind, source.location)
    _check_prunable(pruning, source, spec)
    return source


def _read_data(
    opts: CompileOptions, source: ModelSource, cache: ContentCache, progress: Progress, notes: list[str]
) -> _Data:
    """Intake, then the calibration and evaluation sets read against the model's signature."""
    input_specs = parse_input_specs(opts.inputs, "the input specs ([inputs] / --input)")
    calib_spec = _default_data(opts.calib, opts.model, "calib", "calibration")
    intake = take_in(source, cache, progress, lambda: example_inputs(calib_spec, input_specs))
    # NOTE: a stateful model's calibration states are the float model's own closed-loop ones; its evaluation runs
    # closed-loop over whole ordered sequences (the calibration data's when no --eval: all of it, never a subset)
    calib_all = read_dataset(calib_spec, intake.signature, "calibration", input_specs)
    calib_set = with_float_states_of(intake.onnx.data, calib_all).sample(opts.calib_samples)
    fallback = calib_all if calib_all.recurrent else calib_set
    eval_set = _evaluation_set(opts.eval_data, opts.model, fallback, intake, notes, input_specs)
    eval_set = with_float_states_of(intake.onnx.data, eval_set, keep_recurrent=True)
    _check_labels_for(opts.max_drop_given, eval_set, calib_set)
    notes += list(dict.fromkeys(calib_set.notes + eval_set.notes))  # NOTE: the same set when no --eval
    notes += _layout_note(calib_set)
    return _Data(intake, calib_set, eval_set, opts.inputs)


def _pruned(pruning, source, data: _Data, cache: ContentCache, progress: Progress, notes: list[str]):
    """The model the target compiles: the pruned one where pruning asked for and succeeded, else the intake's."""
    pruned = prune_model(pruning, source, data.intake.signature, data.calib, cache, progress) if pruning else None
    if pruned is not None and pruned.onnx is None:
        notes.append(f"not pruned: {pruned.report['recovery']['error']}; the un-pruned model is compiled instead")
    model_onnx = pruned.onnx if pruned is not None and pruned.onnx is not None else data.intake.onnx
    return model_onnx, pruned


def _build_and_choose(
    opts, target: Target, recipe, plan: Plan, model_onnx: Blob, data: _Data, cache, progress, device_latency=None
):
    """Preparation passes, then every candidate built, measured and judged (choose_candidate.py)."""
    max_memory = parse_memory_size(opts.max_memory) if opts.max_memory is not None else None
    with tempfile.TemporaryDirectory(prefix="edgeml-compile-") as scratch_dir, memory_budget(max_memory):
        ctx = PassContext(data.intake.signature, data.calib, Path(scratch_dir), data.intake.source)
        prepared, records = run_passes(model_onnx, plan.prepare, ctx, cache, progress, data.calib.digest())
        chosen = choose_candidate(
            target=target, recipe=recipe, plan=plan, prepared=prepared, source_onnx=data.intake.onnx,
            calib=data.calib, evalset=data.evalset, budget=opts.budget, ctx=ctx, cache=cache, threads=opts.threads,
            progress=progress, device_latency=device_latency,
        )  # fmt: skip
    device = chosen.built[chosen.decision.chosen].device
    if device:  # NOTE: the host measured a CPU reference; the verdict also says what the device itself runs
        chosen.decision.reason += f"; on the device: {device['summary']}"
    return records, chosen


def _manifest(opts, target: Target, recipe, plan: Plan, pruning, data: _Data, records, chosen, release: int) -> dict:
    shipped, measured, decision = chosen.built[chosen.decision.chosen], chosen.measured, chosen.decision
    tools = _tools_used(plan, decision.chosen)
    return build_manifest(
        name=opts.name,
        version=opts.version,
        release=release,
        spec=target.spec,
        model_file=shipped.shipped_model_file,
        measured_model_file=shipped.model_file,
        runtime=shipped.runtime,
        signature=data.intake.signature,
        preprocessing=data.calib.preprocessing,
        models=measured.models,
        decision=decision,
        budget=opts.budget,
        reference_profile=measured.reference_profile,
        self_test_tolerance=_self_test_tolerance(measured, decision.chosen),
        provenance=_provenance(data.intake, recipe, records, data.calib, data.evalset, tools)
        | {"recipe": opts.recipe_record(target.id, dataclasses.asdict(recipe), pruning)},
        notes=list(plan.notes),
        threads=opts.threads,
        explain_file=EXPLAIN_FILE,
        pruning=chosen.explain["pruning"],
        device=shipped.device,
    )


@dataclass(frozen=True)
class _Drafts:
    """Each candidate as an unsigned draft artifact folder (its files, self-test, draft manifest): what a
    `latency_on_device` hook publishes and times on the device before the decision."""

    opts: CompileOptions
    target: Target
    recipe: Any
    plan: Plan
    pruning: PruneRequest | None
    data: _Data
    release: int

    def step(self, hook: LatencyOnDevice):
        def device_latency(measured: Measurements, built: dict, source) -> Measurements:
            with tempfile.TemporaryDirectory(prefix="edgeml-device-") as tmp:
                timed = speed_ordered(measured.models, built, source)
                figures = hook({n: self.write(measured, n, b, Path(tmp) / n) for n, b in timed.items()})
            return with_device_latency(measured, figures, self.opts.threads)

        return device_latency

    def write(self, measured: Measurements, name: str, built, folder: Path) -> Path:
        draft = Chosen({name: built}, {}, measured, Decision(name, "draft: timed on the device"), {"pruning": None})
        manifest = _manifest(self.opts, self.target, self.recipe, self.plan, self.pruning, self.data, [], draft,
                             self.release)  # fmt: skip
        files = {**built.files, SELF_TEST_FILE: npz_bytes(_self_test_arrays(measured, name))}
        for rel, data in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
        return folder


def _sign_and_write(opts, out_path: Path, chosen, manifest: dict, signing_key, notes: list[str], progress) -> dict:
    files = {
        **chosen.built[chosen.decision.chosen].files,
        SELF_TEST_FILE: npz_bytes(_self_test_arrays(chosen.measured, chosen.decision.chosen)),
        EXPLAIN_FILE: json.dumps(chosen.explain, indent=1, sort_keys=True, allow_nan=False).encode() + b"\n",
    }
    signing_key = signing_key or _default_signing_key(notes)
    progress.step("sign and write artifact")
    signed = write_artifact(out_path, files, manifest, signing_key, force=opts.force)
    progress.finished("sign and write artifact", str(out_path))
    if opts.file.key_id and signed["signature"]["key_id"] != opts.file.key_id:
        notes.append(
            f"signed with key {signed['signature']['key_id']}; the manifest this recipe came from was signed with "
            f"key {opts.file.key_id} (pass --key to sign with that one)"
        )
    return signed


def default_out(name: str, target_id: str) -> Path:
    """Where an artifact goes without --out: build/NAME-TARGET."""
    return Path("build") / f"{name}-{target_id}"


def default_name(model: str, recipe_file: str | os.PathLike[str] | None = None) -> str:
    """The artifact's name without --name: the recipe's manifest's, else from the model's path."""
    file = load_recipe_file(recipe_file) if recipe_file is not None else RecipeFile()
    return file.name or default_name_of(model)


def _release(version: str) -> int:
    try:
        return release_from_version(version)
    except ValueError as exc:
        raise EdgemlError(str(exc), "use a semantic version like 1.2.0, or give --release N") from None


def _check_budget(budget: Budget) -> None:
    if not 0 <= budget.max_drop <= 100:
        raise EdgemlError(f"--max-drop {budget.max_drop} is not between 0 and 100 accuracy points")
    for flag, value in (("--min-cosine", budget.min_cosine), ("--min-channel-cosine", budget.min_channel_cosine)):
        if not -1 <= value <= 1:
            raise EdgemlError(f"{flag} {value} is not between -1 and 1")
    if not 0 <= budget.min_agreement <= 1:
        raise EdgemlError(
            f"--min-agreement {budget.min_agreement} is not a share between 0 and 1", "e.g. 0.99 for 99 %"
        )


def _default_signing_key(notes: list[str]):
    """The key under the config folder, created on first use (said once, in the notes)."""
    path = default_key_path()
    if not path.exists():
        create_keypair(path.parent)
        notes.append(f"created a signing key at {path} (public key: {public_path_for(path)})")
    return load_private_key(path)


def _default_data(given, model: str, stem: str, role: str) -> str:
    if given is not None:
        return str(given)
    beside = Path(model).parent / f"{stem}.npz" if os.path.exists(model) else None
    if beside is not None and beside.exists():
        return str(beside)
    raise CalibrationError(
        f"no {role} data for {model}",
        f"pass --{stem} DATA (.npz with one array per model input, .npy, .csv, image folder or module:function)",
    )


def _layout_note(data: Dataset) -> list[str]:
    """What intake decided for inputs that are not fed samples-first along axis 0 (a state, a constant)."""
    unusual = [layout.describe() for layout in data.layouts if layout.kind != "batched" or layout.batch_axis != 0]
    return ["inputs: " + "; ".join(unusual) + " (`edgeml check --calib` shows all)"] if unusual else []


def _evaluation_set(
    eval_data, model: str, calib_set: Dataset, intake: IntakeResult, notes: list[str], input_specs
) -> Dataset:
    try:
        spec = _default_data(eval_data, model, "eval", "evaluation")
    except CalibrationError:
        notes.append(
            "no evaluation data: fidelity is measured on the calibration set and accuracy is unknown "
            "(pass --eval with labels for an accuracy figure)"
        )
        return calib_set
    return read_dataset(spec, intake.signature, "evaluation", input_specs)


def _check_labels_for(max_drop_given: bool, eval_set: Dataset, calib_set: Dataset) -> None:
    """An accuracy budget asked for explicitly needs labels; a fidelity floor does not."""
    if not max_drop_given or eval_set.labels is not None:
        return
    what = "no evaluation data was given" if eval_set is calib_set else f"{eval_set.source} has no labels"
    raise CalibrationError(
        f"--max-drop is an accuracy budget in top-1 points, and {what}",
        "pass --eval DATA with a `labels` array (.npz), or set a fidelity floor instead with --min-cosine",
    )


def _check_prunable(pruning: PruneRequest | None, source, spec) -> None:
    if pruning is None:
        return
    if source.kind == "onnx":
        raise ModelIntakeError(
            f"pruning needs the PyTorch model, and {source.location} is an ONNX file",
            "pass the .pt2, TorchScript file or module:function factory it was exported from: edgeml prunes the "
            "PyTorch module (torch-pruning) before exporting it",
        )
    if "onnx" not in spec.source_kinds:
        raise TargetError(
            f"target {spec.id} converts from the PyTorch source itself, so a pruned model would not reach it",
            "prune for cpu-ort or cpu-openvino, or prune the model yourself and pass the pruned module",
        )


def _check_target(target: Target, model: Blob, recipe, cache: ContentCache, progress: Progress):
    import onnx

    label = f"check {target.spec.id}"
    progress.step(label)
    proto = onnx.load_model_from_string(model.data)
    key = cache_key(
        model=model.sha256,
        target=target.spec.to_dict(),
        recipe=dataclasses.asdict(recipe),
        tools=tool_versions(("onnx", "onnxruntime", "openvino", "ethos-u-vela", "ai-edge-litert")),
        rules=rules_digest(),
    )
    hit = cache.get_json("check", key)
    report = CheckReport.from_dict(hit) if hit else target.check(model.data, proto, target.spec, recipe)
    if not hit:
        cache.put_json("check", key, report.to_dict())
    progress.finished(label, f"{report.supported_nodes}/{report.nodes} nodes supported" + (", cached" if hit else ""))
    for note in report.notes:
        progress.note(note)
    if not report.ok:
        details = "; ".join(
            f"{i.node}{f' [{i.op}]' * bool(i.op)} breaks {i.rule}: {i.detail}" for i in report.issues[:8]
        )
        fixes = [i.fix for i in report.issues if i.fix]
        raise TargetError(
            f"target {target.spec.id} cannot run this model: {details}",
            fixes[0] if fixes else "see `edgeml targets` for other targets",
        )
    return proto, report


def _self_test_arrays(measured: Measurements, chosen: str) -> dict[str, np.ndarray]:
    st = measured.self_test
    arrays = {k: v for k, v in st.items() if k.startswith("input/") or k == WHOLE_FEED}
    arrays |= {"expected/" + k.split("/", 1)[1]: v for k, v in st.items() if k.startswith(f"{chosen}/")}
    return arrays


def _self_test_tolerance(measured: Measurements, chosen: str) -> dict[str, float]:
    outs = [v for k, v in measured.self_test.items() if k.startswith(f"{chosen}/")]
    scale = max(float(np.abs(v).max()) for v in outs) if outs else 1.0
    return {"min_cosine": 0.999, "atol": round(0.05 * scale + 1e-5, 6)}


def _tools_used(plan, chosen: str) -> tuple[str, ...]:
    """The tools whose versions shaped the shipped files: every preparation pass and the chosen candidate's."""
    cand = plan.candidates.get(chosen)  # NOTE: None for the float source (a device-timing draft of it)
    steps = [*plan.prepare, *(cand.passes if cand else ()), cand.lowering if cand else None]
    names = {"numpy", "onnx"} | {t for step in steps if step is not None for t in step.tools}
    return tuple(sorted(names))


def _provenance(
    intake: IntakeResult, recipe, records: list[PassRecord], calib: Dataset, evalset: Dataset, tools: tuple[str, ...]
) -> dict:

    return {
        "source": {"kind": intake.source.kind, "location": intake.source.location, "sha256": intake.source.digest},
        "exporter": intake.exporter,
        "passes": [{"name": r.name, "config": r.config, "changed": r.changed, "notes": list(r.notes)} for r in records],
        "calibration": {"source": calib.source, "samples": len(calib), "digest": calib.digest()},
        "evaluation": {"source": evalset.source, "samples": len(evalset), "digest": evalset.digest()},
        "tools": {k: v for k, v in tool_versions((*tools, *_EXPORT_TOOLS[intake.exporter is not None])).items() if v},
    }
