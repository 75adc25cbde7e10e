"""The HTTP API's route table: (method, path template) → the same fleet operation the CLI runs.

Each handler parses the request, calls one `Fleet` method exactly as `edgeml fleet …` does, and returns
(status, JSON body). Errors are the fleet's own (FleetError and its not-found / conflict / busy kinds),
turned into HTTP answers by http_api.py. docs/openapi.yaml documents this table; a test keeps them equal.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import edgeml
from edgeml.fleet.api_request import ApiError, ApiRequest
from edgeml.fleet.artifact_upload import publish_upload
from edgeml.fleet.device_tags import TagChange
from edgeml.fleet.lifecycles import RolloutState
from edgeml.fleet.rollout_plan import DEFAULT_MIN_SAMPLE, DEFAULT_WAVES, RolloutPlan
from edgeml.fleet.selector import parse_selector

if TYPE_CHECKING:
    from edgeml.fleet.fleet_service import Fleet

__all__ = ["OPERATOR", "PUBLIC", "READ", "ROLLOUT_DEFAULTS", "ROUTES", "Route"]

PUBLIC, READ, OPERATOR = "public", "read", "operator"  # who may call: anyone, either token, the operator token
Reply = tuple[int, Any]
# NOTE: the same defaults as `edgeml fleet rollout create` / `experiment create` (a test compares them)
ROLLOUT_DEFAULTS = {
    "canary": "5%", "waves": DEFAULT_WAVES, "bake": "10m", "deadline": "30m", "gates": [],
    "min_sample": DEFAULT_MIN_SAMPLE, "allow_rollback": False,
}  # fmt: skip
ACTOR = "http:operator"  # who the audit trail names for a change made with the operator token
EXPERIMENT_DEFAULTS = {"split": 50, "metrics": "p95_latency,error_rate"}
TAG_DEFAULTS: dict[str, Any] = {"set": {}, "remove": []}


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # /v1/rollouts/{rollout_id}: a {name} matches one path segment
    handler: Callable[[Fleet, ApiRequest], Reply]
    access: str
    pattern: re.Pattern = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.template))
        object.__setattr__(self, "pattern", re.compile(f"^{regex}$"))


def health(fleet: Fleet, req: ApiRequest) -> Reply:
    return 200, {"ok": True, "version": edgeml.__version__, "api": "v1"}


def stats(fleet: Fleet, req: ApiRequest) -> Reply:
    devices = fleet.devices.select()
    return 200, {
        "devices": {"total": len(devices), "online": sum(d["online"] for d in devices)},
        "artifacts": len(fleet.artifacts.all()),
        "rollouts": dict(Counter(r["state"] for r in fleet.rollouts.list())),
        "rejected_messages": fleet.events.rejected(),
    }


def list_devices(fleet: Fleet, req: ApiRequest) -> Reply:
    query = req.query_values(("tag", "target", "id"))
    terms = [f"tag:{t}" for t in query.get("tag", [])]
    terms += [f"{kind}={value}" for kind in ("target", "id") for value in query.get(kind, [])]
    selector = parse_selector(",".join(terms)) if terms else None
    return 200, {"devices": fleet.devices.select(selector)}


def get_device(fleet: Fleet, req: ApiRequest) -> Reply:
    device = fleet.devices.get(req.params["device_id"])
    if device is None:
        raise ApiError(404, "not_found", f"no device {req.params['device_id']}", "see GET /v1/devices")
    return 200, device | {"events": fleet.events.for_device(device["id"], limit=20)}


def tag_device(fleet: Fleet, req: ApiRequest) -> Reply:
    change = _tag_change(req.json(optional=TAG_DEFAULTS))
    return 200, fleet.devices.change_device_tags(req.params["device_id"], change)


def tag_devices(fleet: Fleet, req: ApiRequest) -> Reply:
    body = req.json(required=("to",), optional=TAG_DEFAULTS)
    return 200, fleet.devices.change_tags(parse_selector(_text(body, "to")), _tag_change(body))


def _tag_change(body: dict[str, Any]) -> TagChange:
    assign = body["set"]
    if not isinstance(assign, dict) or not all(isinstance(v, str) for v in assign.values()):
        problem = f"field 'set' is {assign!r}, not an object of strings"
        raise ApiError(400, "invalid", problem, 'send tag values as strings, e.g. {"site": "berlin", "floor": "3"}')
    return TagChange(assign, tuple(dict.fromkeys(_texts(body, "remove"))))


def list_artifacts(fleet: Fleet, req: ApiRequest) -> Reply:
    return 200, {"artifacts": [_summary(a) for a in fleet.artifacts.all()]}


def get_artifact(fleet: Fleet, req: ApiRequest) -> Reply:
    return 200, fleet.artifacts.get(req.params["sha256"])


def publish_artifact(fleet: Fleet, req: ApiRequest) -> Reply:
    now = time.time()
    a = publish_upload(fleet.artifacts, req, now)
    return (201 if a["published_at"] == now else 200), _summary(a)


def _summary(artifact: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in artifact.items() if k != "manifest"}


def list_rollouts(fleet: Fleet, req: ApiRequest) -> Reply:
    states = req.query_values(("state",)).get("state")
    known = [s.value for s in RolloutState]
    if unknown := sorted(set(states or ()) - set(known)):
        raise ApiError(400, "invalid", f"unknown rollout state {', '.join(map(repr, unknown))}",
                       f"filter by one of: {', '.join(known)}")  # fmt: skip
    return 200, {"rollouts": [r for r in fleet.rollouts.list() if not states or r["state"] in states]}


def create_rollout(fleet: Fleet, req: ApiRequest) -> Reply:
    body = req.json(required=("artifact", "to"), optional=ROLLOUT_DEFAULTS)
    shares = _shares(body, "canary"), _shares(body, "waves")
    min_sample, allow_rollback = body["min_sample"], body["allow_rollback"]
    if not isinstance(allow_rollback, bool):
        raise ApiError(400, "invalid", f"field 'allow_rollback' is {allow_rollback!r}", "send true or false")
    plan = RolloutPlan.build(*shares, _text(body, "bake"), _text(body, "deadline"), _texts(body, "gates"),
                             min_sample, allow_rollback)  # fmt: skip
    return 201, fleet.rollouts.create(_text(body, "artifact"), _text(body, "to"), plan, time.time(), ACTOR)


def rollout_status(fleet: Fleet, req: ApiRequest) -> Reply:
    return 200, fleet.rollouts.status_with_gates(req.params["rollout_id"])


def _steer(verb: str) -> Callable[[Fleet, ApiRequest], Reply]:
    def handler(fleet: Fleet, req: ApiRequest) -> Reply:
        rollout_id = req.params["rollout_id"]
        if verb == "abort":
            reason = _text(req.json(optional={"reason": "aborted by the operator"}), "reason")
            fleet.rollouts.abort(rollout_id, reason, time.time(), ACTOR)
        else:
            req.json()  # NOTE: an empty body or {}; anything else is refused, not ignored
            getattr(fleet.rollouts, verb)(rollout_id, time.time(), ACTOR)
        return 200, fleet.rollouts.status_with_gates(rollout_id)

    handler.__name__ = f"{verb}_rollout"
    return handler


def create_experiment(fleet: Fleet, req: ApiRequest) -> Reply:
    body = req.json(required=("a", "b", "to"), optional=EXPERIMENT_DEFAULTS)
    split = body["split"]
    if isinstance(split, bool) or not isinstance(split, (int, float)):
        raise ApiError(400, "invalid", f"field 'split' is {split!r}, not a number", "percent of devices on B, e.g. 50")
    a, b, to, metrics = (_text(body, k, many=k == "metrics") for k in ("a", "b", "to", "metrics"))
    return 201, fleet.experiments.create(a, b, float(split), to, metrics.split(","), time.time())


def experiment_report(fleet: Fleet, req: ApiRequest) -> Reply:
    return 200, fleet.experiments.report(req.params["experiment_id"])


def list_experiments(fleet: Fleet, req: ApiRequest) -> Reply:
    return 200, {"experiments": fleet.experiments.list()}


def stop_experiment(fleet: Fleet, req: ApiRequest) -> Reply:
    body = req.json(optional={"keep": None})
    keep = body["keep"]
    if keep not in (None, "A", "B"):
        raise ApiError(400, "invalid", f"field 'keep' is {keep!r}", 'the arm to move every device to: "A", "B" or null')
    return 200, fleet.experiments.stop(req.params["experiment_id"], keep, time.time())


def list_retrain(fleet: Fleet, req: ApiRequest) -> Reply:
    return 200, {"requests": fleet.retraining.list()}


def _text(body: dict[str, Any], name: str, many: bool = False) -> str:
    """A string field; with `many`, a list of strings is accepted too and joined by commas."""
    value = body[name]
    if many and isinstance(value, list):
        return ",".join(_texts(body, name))
    if not isinstance(value, str):
        raise ApiError(400, "invalid", f"field {name!r} is {value!r}, not a string", f'send "{name}" as a JSON string')
    return value


def _texts(body: dict[str, Any], name: str) -> list[str]:
    value = body[name]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError(
            400, "invalid", f"field {name!r} is {value!r}, not a list of strings", f'send "{name}" as a list of strings'
        )
    return value


def _shares(body: dict[str, Any], name: str) -> str:
    """ "10%", 10 (percent, as the CLI's --canary 10), or a list of those → the CLI's comma-separated text."""
    values = body[name] if isinstance(body[name], list) else [body[name]]
    if not values or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in values):
        raise ApiError(400, "invalid", f"field {name!r} is {body[name]!r}", 'give shares like "10%" or 10')
    return ",".join(v if isinstance(v, str) else f"{v}%" for v in values)


ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/health", health, PUBLIC),
    Route("GET", "/v1/stats", stats, READ),
    Route("GET", "/v1/devices", list_devices, READ),
    Route("GET", "/v1/devices/{device_id}", get_device, READ),
    Route("PUT", "/v1/devices/{device_id}/tags", tag_device, OPERATOR),
    Route("POST", "/v1/tags", tag_devices, OPERATOR),
    Route("GET", "/v1/artifacts", list_artifacts, READ),
    Route("POST", "/v1/artifacts", publish_artifact, OPERATOR),
    Route("GET", "/v1/artifacts/{sha256}", get_artifact, READ),
    Route("GET", "/v1/rollouts", list_rollouts, READ),
    Route("POST", "/v1/rollouts", create_rollout, OPERATOR),
    Route("GET", "/v1/rollouts/{rollout_id}", rollout_status, READ),
    Route("POST", "/v1/rollouts/{rollout_id}/pause", _steer("pause"), OPERATOR),
    Route("POST", "/v1/rollouts/{rollout_id}/resume", _steer("resume"), OPERATOR),
    Route("POST", "/v1/rollouts/{rollout_id}/abort", _steer("abort"), OPERATOR),
    Route("GET", "/v1/experiments", list_experiments, READ),
    Route("POST", "/v1/experiments", create_experiment, OPERATOR),
    Route("POST", "/v1/experiments/{experiment_id}/stop", stop_experiment, OPERATOR),
    Route("GET", "/v1/experiments/{experiment_id}/report", experiment_report, READ),
    Route("GET", "/v1/retrain", list_retrain, READ),
)
