"""Two signed artifacts × labelled data sets → top-1 accuracy of each, and whether the new one is better.

Both run through the same runtime adapter a device runs (edgeml.runtimes), from the artifact itself (a
folder or the fleet store's .tar), so the comparison is of what would ship, not of the training framework's
float model. "Better" is stated in points: the new model must gain at least `min_gain` on the drifted data
and lose at most `max_drop` on the original evaluation set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeml.artifact import open_artifact
from edgeml.runtimes import open_session

__all__ = ["Comparison", "artifact_accuracy", "compare"]

_BATCH = 64


@dataclass(frozen=True)
class Comparison:
    accuracy: dict[str, dict[str, float]]  # data set ("drifted", "original") → {"production", "candidate"}
    better: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "better": self.better, "reason": self.reason}


def artifact_accuracy(artifact: str | Path, data: str | Path) -> float:
    """Top-1 accuracy in percent of `artifact` on `data` (an .npz with one array per input and `labels`)."""
    with np.load(data, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    labels = arrays.pop("labels")
    with open_artifact(artifact) as root:
        manifest = json.loads((root / "manifest.json").read_text())
        session = open_session(manifest["target"]["runtime"], root / manifest["target"]["model_file"])
        output = manifest["io"]["outputs"][0]["name"]
        predicted = []
        for i in range(0, len(labels), _BATCH):
            feeds = {name: values[i : i + _BATCH] for name, values in arrays.items()}
            predicted.append(session.run(feeds)[output].argmax(axis=-1))
    return round(100.0 * float(np.mean(np.concatenate(predicted) == labels)), 2)


def compare(
    production: str | Path, candidate: str | Path, drifted: str | Path, original: str | Path | None,
    min_gain: float = 1.0, max_drop: float = 1.0,
) -> Comparison:  # fmt: skip
    sets = {"drifted": drifted} | ({"original": original} if original else {})
    acc = {
        name: {"production": artifact_accuracy(production, data), "candidate": artifact_accuracy(candidate, data)}
        for name, data in sets.items()
    }
    gain = acc["drifted"]["candidate"] - acc["drifted"]["production"]
    if gain < min_gain:
        return Comparison(
            acc, False, f"on the drifted data the new model gains {gain:+.2f} points (needs ≥ {min_gain:g})"
        )
    if "original" in acc:
        drop = acc["original"]["production"] - acc["original"]["candidate"]
        if drop > max_drop:
            return Comparison(
                acc,
                False,
                f"on the original evaluation set the new model loses {drop:.2f} points (at most {max_drop:g})",
            )
    return Comparison(acc, True, f"on the drifted data the new model gains {gain:+.2f} points")
