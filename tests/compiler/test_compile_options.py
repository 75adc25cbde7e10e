"""The compile options schema is the one source: flags, recipe-file keys, precedence and defaults come from it."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edgeml.cli.compile_cmd import compile_cmd
from edgeml.compiler.compile_options import COMPILE_OPTIONS, option_named, recipe_keys, resolve_options
from edgeml.errors import EdgemlError


def test_every_option_is_a_compile_flag_with_its_default_in_the_help():
    flags = {opt for p in compile_cmd.params for opt in p.opts}
    for option in COMPILE_OPTIONS:
        assert option.cli_flag in flags, option.name
    help_text = " ".join(CliRunner().invoke(compile_cmd, ["--help"], terminal_width=400).output.split())
    assert "[default: 0.99]" in help_text and "else 0.1.0." in help_text and "[default: 256]" in help_text


def test_recipe_file_keys_are_the_schemas():
    assert recipe_keys() == {"target", "calib_samples", "budget", "options", "prune", "inputs"}
    assert recipe_keys("budget") == {"max_drop", "min_cosine", "min_channel_cosine", "min_agreement"}
    assert recipe_keys("prune") == {"spec", "finetune", "hook", "epochs"}


def test_a_setting_comes_from_the_caller_then_the_recipe_file_then_the_default(tmp_path):
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"target": "cpu-openvino", "calib_samples": 64, "budget": {"min_cosine": 0.95}}))
    opts = resolve_options("m.onnx", None, {"recipe_file": recipe, "min_cosine": 0.999})
    assert opts.target == "cpu-openvino" and opts.calib_samples == 64
    assert opts.budget.min_cosine == 0.999  # the caller's wins over the file's
    assert opts.budget.max_drop == option_named("max_drop").default and not opts.max_drop_given
    assert opts.budget.to_dict() == opts.recipe_record("cpu-openvino", {}, None)["budget"]


def test_an_unknown_recipe_key_or_keyword_is_refused(tmp_path):
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"budget": {"min_cosin": 0.9}}))
    with pytest.raises(EdgemlError, match="min_agreement, min_channel_cosine, min_cosine"):
        resolve_options("m.onnx", None, {"recipe_file": recipe})
    with pytest.raises(TypeError, match="min_cosin"):
        resolve_options("m.onnx", None, {"min_cosin": 0.9})
