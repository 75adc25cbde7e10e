"""What one run of the retraining flow needs to know: the fleet, the training hook, the rollout plan, the bar
the new model must clear, and where to keep its work and its ledger."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RetrainSettings"]


@dataclass(frozen=True)
class RetrainSettings:
    db: str  # the fleet database (SQLite path)
    store: str  # the fleet's artifact store folder
    hook: str  # the training function, module:function
    key: str | None = None  # the fleet's signing key (default: your edgeml signing key)
    work_dir: str | None = None  # default: see work_root()
    mlflow: str | None = None  # tracking URI asked for (None: no tracking; "local": the embedded store)
    canary: str = "20%"
    waves: str = "100%"
    bake: str = "30s"
    deadline: str = "10m"
    gates: tuple[str, ...] = field(default=("install_success>=1.0",))
    min_gain: float = 1.0  # accuracy points the new model must gain on the drifted data
    max_drop: float = 1.0  # accuracy points it may lose on the original evaluation set
    require_approval: bool = False  # stop before the rollout until `edgeml fleet retrain approve`
    rollout_timeout_s: float = 1800.0
    poll_s: float = 1.0

    def work_root(self) -> Path:
        """`work_dir`; else beside an SQLite database (`fleet.sqlite` → `fleet.retrain/`); else, for a server
        database (postgresql://…), `retrain/` under edgeml's data folder."""
        if self.work_dir:
            return Path(self.work_dir)
        if "://" in str(self.db):
            from edgeml.tracking.tracking_store import data_dir

            return data_dir() / "retrain"
        return Path(f"{Path(self.db).with_suffix('')}.retrain")

    def ledger_path(self) -> Path:
        return self.work_root() / "flows.sqlite"
