"""`edgeml fleet tag` as an operator runs it on the fleet database: set, overwrite and remove tags on the
devices a selector matches, refusals that say what to do, and a rollout then selecting by the tag."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from edgeml.cli import main
from edgeml.protocol import Hello


@pytest.fixture
def fleet_cli(tmp_path, keypair):
    """Run `edgeml fleet …` on a database with cam-00…cam-03 (cpu-ort) and gw-00 (cpu-openvino)."""
    from edgeml.artifact import load_private_key
    from edgeml.fleet import Fleet

    common = ["--db", str(tmp_path / "fleet.sqlite"), "--store", str(tmp_path / "store"), "--key", str(keypair[0])]
    fleet = Fleet(tmp_path / "fleet.sqlite", tmp_path / "store", load_private_key(keypair[0]))
    for device_id, target in [*((f"cam-{i:02d}", "cpu-ort") for i in range(4)), ("gw-00", "cpu-openvino")]:
        fleet.devices.on_hello(Hello(device_id, target, "0.1.0", 1 << 30, {}), time.time())
    fleet.db.close()

    def run(*args: str):
        return CliRunner().invoke(main, ["fleet", *args, *common])

    return run


def tags_of(fleet_cli) -> dict[str, dict[str, str]]:
    return {d["id"]: d["tags"] for d in json.loads(fleet_cli("devices", "--json").output)}


def test_tag_set_overwrite_and_remove(fleet_cli):
    done = fleet_cli("tag", "id=cam-0*", "site=berlin", "floor=3")
    assert done.exit_code == 0 and "tags changed on 4 of 4 device(s) matching id=cam-0*" in done.output
    assert "set site=berlin, floor=3" in done.output
    done = fleet_cli("tag", "target=cpu-ort,tag:floor=3", "site=paris", "--remove", "floor", "--json")
    assert done.exit_code == 0
    result = json.loads(done.output)
    assert (result["matched"], result["changed"]) == (4, 4) and result["selector"] == "target=cpu-ort,tag:floor=3"
    assert tags_of(fleet_cli) == {**{f"cam-{i:02d}": {"site": "paris"} for i in range(4)}, "gw-00": {}}
    again = fleet_cli("tag", "all", "--remove", "floor")
    assert again.exit_code == 0 and "tags changed on 0 of 5 device(s)" in again.output and "5 unchanged" in again.output
    listed = fleet_cli("devices", "--tag", "site=paris", "--json")
    assert [d["id"] for d in json.loads(listed.output)] == ["cam-00", "cam-01", "cam-02", "cam-03"]


@pytest.mark.parametrize(
    ("args", "error", "hint"),
    [
        (("tag:site=mars", "x=y"), "selector 'tag:site=mars' matches 0 device(s)", "edgeml fleet devices"),
        (("id=cam-0[0-1]", "x=y"), "cannot read 'id=cam-0[0-1]'", "id=PATTERN"),
        (("all",), "no tag to set or remove", "--remove KEY"),
        (("all", "site"), "'site' is not KEY=VALUE", "site=berlin"),
        (("all", "site:x=y"), "tag key 'site:x' has ':'", "no , = :"),
        (("all", "site=a b"), "the value of tag 'site' has ' '", "1-128 characters"),
        (("all", "a=1", "--remove", "a"), "tag key(s) ['a'] are both set and removed", "not both"),
    ],
)
def test_tag_refusals_name_the_culprit_and_the_fix(fleet_cli, args, error, hint):
    refused = fleet_cli("tag", *args)
    assert refused.exit_code == 2, refused.output
    assert error in refused.output and "hint:" in refused.output and hint in refused.output
    assert all(tags == {} for tags in tags_of(fleet_cli).values())


def test_a_rollout_to_the_tag_picks_exactly_the_tagged_devices(fleet_cli, releases):
    assert fleet_cli("publish", str(releases["1.2.3"])).exit_code == 0
    assert fleet_cli("tag", "id=cam-01", "site=berlin").exit_code == 0
    assert fleet_cli("tag", "id=cam-03", "site=berlin").exit_code == 0
    assert fleet_cli("tag", "id=gw-00", "site=berlin").exit_code == 0  # another target: skipped, and said so
    created = fleet_cli("rollout", "create", "digits@1.2.3", "--to", "tag:site=berlin", "--json")
    rollout = json.loads(created.output)
    assert sorted(e["device_id"] for e in rollout["executions"]) == ["cam-01", "cam-03"]
    assert rollout["skipped_incompatible"] == 1
