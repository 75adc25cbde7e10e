"""Operator tags on devices: checked so a selector can select them again, applied to every matched device in one
transaction, kept across a device's re-hello, and what rollouts and experiments then select by."""

from __future__ import annotations

import time

import pytest

from edgeml.fleet import FleetError, RolloutPlan
from edgeml.fleet.database import FleetNotFoundError
from edgeml.fleet.device_tags import MAX_TAGS, TagChange
from edgeml.fleet.selector import parse_selector
from edgeml.protocol import Hello, ModelRef, Status


def hello(fleet, device_id: str, target: str = "cpu-ort", current: ModelRef | None = None) -> None:
    fleet.devices.on_hello(Hello(device_id, target, "0.1.0", 1 << 30, {"onnxruntime": "1.32.0"}, current), time.time())


def test_what_is_set_a_selector_selects_again(fleet):
    hello(fleet, "cam-00")
    tags = {"site": "berlin", "rack.row-2": "a_1", "gps": "52.52:13.40", "path": "eu/de/ber", "ort": "münchen"}
    fleet.devices.change_device_tags("cam-00", TagChange(tags))
    for key, value in tags.items():
        assert [d["id"] for d in fleet.devices.select(parse_selector(f"tag:{key}={value}"))] == ["cam-00"]


@pytest.mark.parametrize(
    ("assignments", "remove", "message"),
    [
        ([], [], "no tag to set or remove"),
        (["site"], [], "is not KEY=VALUE"),
        (["=berlin"], [], "tag key '' is empty"),
        (["site="], [], "the value of tag 'site' is empty"),
        (["si,te=x"], [], "has ','"),
        (["si:te=x"], [], "has ':'"),
        (["site=a b"], [], "has ' '"),
        (["site=a=b"], [], "has '='"),
        (["site=a,b"], [], "has ','"),
        (["k" * 65 + "=x"], [], "65 characters; the most is 64"),
        (["site=" + "v" * 129], [], "129 characters; the most is 128"),
        (["site=a", "site=b"], [], "set twice"),
        (["site=a"], ["site"], "both set and removed"),
        ([], ["bad key"], "has ' '"),
    ],
)
def test_a_tag_no_selector_could_match_is_refused_with_the_rule(assignments, remove, message):
    with pytest.raises(FleetError, match=message) as refused:
        TagChange.parse(assignments, remove)
    assert refused.value.hint


def test_set_overwrite_and_remove_on_every_matched_device(fleet):
    for device_id in ("cam-00", "cam-01", "gw-00"):
        hello(fleet, device_id)
    fleet.devices.set_tags("cam-01", {"site": "paris", "rack": "7"})
    result = fleet.devices.change_tags(parse_selector("id=cam-*"), TagChange.parse(["site=berlin"], ["rack"]))
    assert (result["matched"], result["changed"]) == (2, 2)
    assert [d["tags"] for d in result["devices"]] == [{"site": "berlin"}, {"site": "berlin"}]
    assert fleet.devices.get("gw-00")["tags"] == {}
    again = fleet.devices.change_tags(parse_selector("id=cam-*"), TagChange.parse(["site=berlin"], ["rack"]))
    assert (again["matched"], again["changed"]) == (2, 0)  # the same change twice changes nothing more
    with pytest.raises(FleetError, match=r"matches 0 device\(s\)") as refused:
        fleet.devices.change_tags(parse_selector("tag:site=mars"), TagChange.parse(["x=y"]))
    assert "edgeml fleet devices" in refused.value.hint
    with pytest.raises(FleetNotFoundError, match="no device nobody"):
        fleet.devices.change_device_tags("nobody", TagChange.parse(["x=y"]))


def test_one_device_over_the_cap_leaves_every_device_unchanged(fleet):
    hello(fleet, "cam-00")
    hello(fleet, "cam-01")
    fleet.devices.set_tags("cam-01", {f"k{i}": "v" for i in range(MAX_TAGS)})
    with pytest.raises(FleetError, match=f"device cam-01 would hold {MAX_TAGS + 1} tags"):
        fleet.devices.change_tags(parse_selector("all"), TagChange.parse(["site=berlin"]))
    assert fleet.devices.get("cam-00")["tags"] == {}  # one transaction: all or nothing


def test_tags_survive_a_re_hello_and_a_status(fleet):
    hello(fleet, "cam-00")
    fleet.devices.change_device_tags("cam-00", TagChange.parse(["site=berlin"]))
    hello(fleet, "cam-00", current=ModelRef("digits", "1.2.3", 3, "a" * 64))  # reconnect, after an install
    device = fleet.devices.get("cam-00")
    # a hello is retained (a restarted fleet gets it again, maybe long after): it never says what runs now
    assert device["tags"] == {"site": "berlin"} and device["current_version"] is None
    installed = {"a": ModelRef("digits", "1.2.3", 3, "a" * 64), "b": None}
    fleet.devices.on_status("cam-00", Status("committed", True, int(time.time()), installed, "a"), time.time())
    assert fleet.devices.get("cam-00")["current_version"] == "1.2.3"  # its status does
    fleet.devices.on_status("cam-00", Status("offline", False, int(time.time())), time.time())
    assert fleet.devices.get("cam-00")["tags"] == {"site": "berlin"}


def test_an_offline_status_without_slots_keeps_the_last_known_model(fleet):
    """A simulator's goodbye or a last will that names no slots says "offline", not "runs nothing"."""
    ref = ModelRef("digits", "1.2.3", 3, "a" * 64)
    hello(fleet, "cam-00", current=ref)
    fleet.devices.on_status("cam-00", Status("offline", False, int(time.time())), time.time())
    device = fleet.devices.get("cam-00")
    assert not device["online"] and (device["current_version"], device["current_sha"]) == ("1.2.3", "a" * 64)
    fleet.devices.on_status("cam-00", Status("idle", True, int(time.time()), {"a": None, "b": None}), time.time())
    assert fleet.devices.get("cam-00")["current_version"] is None  # online, both slots empty: it runs nothing


def test_a_rollout_to_a_tag_reaches_exactly_the_tagged_devices(world, run, releases):
    service, devices, clock = world
    fleet = service.fleet
    fleet.artifacts.publish(releases["1.2.3"], clock.now)
    tagged = {"cam-01", "cam-04", "cam-07"}
    for device_id in tagged:
        fleet.devices.change_device_tags(device_id, TagChange.parse(["site=berlin"]))
    for d in devices:  # every device reconnects: hello and status again; the tags stay
        d.announce()
    service.pump()
    assert {d["id"] for d in fleet.devices.select(parse_selector("tag:site=berlin"))} == tagged
    plan = RolloutPlan.build("34%", "100%", "1s", "1m", ["install_success>=1.0"])
    r = fleet.rollouts.create("digits@1.2.3", "target=cpu-ort,tag:site=berlin", plan, clock.now)
    assert {e["device_id"] for e in r["executions"]} == tagged
    status = run(service, devices, clock, r["id"])
    assert status["state"] == "completed"
    assert {d.device_id for d in devices if d.current and d.current.version == "1.2.3"} == tagged


def test_an_experiment_to_a_tag_assigns_exactly_the_tagged_devices(fleet, releases):
    for i in range(12):
        hello(fleet, f"cam-{i:02d}")
    for version in ("1.2.3", "1.3.0"):
        fleet.artifacts.publish(releases[version], time.time())
    fleet.devices.change_tags(parse_selector("id=cam-0*"), TagChange.parse(["cohort=ab"]))
    report = fleet.experiments.create("digits@1.2.3", "digits@1.3.0", 50, "tag:cohort=ab", ["error_rate"], time.time())
    assert report["arms"]["A"]["devices"] + report["arms"]["B"]["devices"] == 10  # cam-00 … cam-09, not cam-10/11
