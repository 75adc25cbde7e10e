"""A candidate's files → its accuracy and fidelity vs the float model on the evaluation set (no timing).

What `measure` computes for every candidate, one candidate at a time: the accuracy-aware search judges each
mix it tries this way — same data, same runtime adapter, same batching — so its verdict is the one the
selection reaches afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeml.calibration.dataset import Dataset
from edgeml.compiler.build_candidate import Built
from edgeml.compiler.evaluate import eval_batch, fidelity, run_dataset, top1_accuracy
from edgeml.compiler.measure import open_built

__all__ = ["CandidateEvaluator", "output_sqnr_db"]


class CandidateEvaluator:
    def __init__(self, source: Built, evalset: Dataset, scratch: Path, threads: int = 1) -> None:
        self.evalset = evalset
        self.scratch = scratch
        self.threads = threads
        self.batch = eval_batch(source.onnx.data, evalset)
        self.reference = self.outputs(source)
        self.float_metrics = {"accuracy": self._accuracy(self.reference)}

    def outputs(self, built: Built) -> dict[str, np.ndarray]:
        session = open_built(built, self.scratch / "evaluate" / built.digest[:16], self.threads)
        return run_dataset(session, self.evalset, self.batch)

    def metrics(self, built: Built) -> dict[str, Any]:
        """{accuracy, fidelity, sqnr_db}: what `budget_verdict` reads, plus the worst output's SQNR."""
        out = self.outputs(built)
        fid = fidelity(self.reference, out)
        return {"accuracy": self._accuracy(out), "fidelity": fid, "sqnr_db": output_sqnr_db(fid)}

    def _accuracy(self, outputs: dict[str, np.ndarray]) -> float | None:
        return None if self.evalset.labels is None else top1_accuracy(outputs, self.evalset.labels)


def output_sqnr_db(fid: dict[str, dict[str, Any]]) -> float:
    """The worst output's SQNR vs float: one continuous figure for ranking (top-1 on a few hundred samples
    moves in steps and ties)."""
    return min(f["sqnr_db"] for f in fid.values())
