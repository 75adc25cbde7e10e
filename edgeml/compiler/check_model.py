"""`edgeml check`: a model + a target → can it run there, and what falls back — without compiling.

Takes the model in (a PyTorch source is exported once, cached) and runs the target's own pre-flight check,
the same rules its lowering applies. The report also says what intake inferred for each input (shape,
dtype, batch axis or constant, dynamic axes): from the calibration data when given, else from the shapes.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from edgeml.calibration.example_inputs import example_inputs
from edgeml.calibration.input_layout import layouts_without_data, parse_input_specs
from edgeml.calibration.read_dataset import read_dataset
from edgeml.calibration.recurrence import annotated, decide_recurrence
from edgeml.compiler.content_cache import ContentCache
from edgeml.compiler.intake import identify_source, take_in
from edgeml.compiler.progress import NullProgress, Progress
from edgeml.locations import cache_dir as default_cache_dir
from edgeml.targets import default_target_id, load_target
from edgeml.targets.check_report import CheckReport
from edgeml.targets.source_kinds import check_source_kind

__all__ = ["check_model"]


def check_model(
    model: str | os.PathLike[str],
    target: str | None = None,
    *,
    options: dict[str, Any] | None = None,
    calib: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    inputs: dict[str, dict[str, Any]] | None = None,
) -> CheckReport:
    """`inputs`: per-input specs, as `compile_model` takes them ({"state": {"batch_axis": 1}})."""
    import onnx

    target_obj = load_target(target or default_target_id())
    recipe = target_obj.recipe(options)
    source = identify_source(str(model))
    check_source_kind(target_obj.spec, source.kind, source.location)
    specs = parse_input_specs(inputs or {}, "the input specs (--input)")
    examples = (lambda: example_inputs(str(calib), specs)) if calib else None
    intake = take_in(source, ContentCache(default_cache_dir(cache_dir)), progress or NullProgress(), examples)
    notes: tuple[str, ...] = ()
    if calib:
        data = read_dataset(calib, intake.signature, "calibration", specs)
        layouts, notes = data.layouts, _sequence_notes(data)
    else:
        layouts = annotated(layouts_without_data(intake.signature, specs), decide_recurrence(intake.signature, specs))
    proto = onnx.load_model_from_string(intake.onnx.data)
    report = target_obj.check(intake.onnx.data, proto, target_obj.spec, recipe)
    return dataclasses.replace(report, inputs=tuple(layout.to_dict() for layout in layouts), notes=report.notes + notes)


def _sequence_notes(data) -> tuple[str, ...]:
    """What a stateful model's data says of its sequences (evaluation runs them closed-loop)."""
    if not data.recurrent:
        return ()
    count = len(data.sequences())
    ids = "" if data.sequence_ids is not None else " (no edgeml_sequences entry: all samples are one sequence)"
    fed = ", ".join(f"{name} ← {rec.output}" for name, rec in data.recurrent.items())
    return (f"{data.source}: {count} ordered sequence(s), {len(data)} steps{ids}; closed loop: {fed}",)
