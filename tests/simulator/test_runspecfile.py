"""Run-spec files (simulator/runspecfile.py): options -> TOML -> options gives the same run, and every
malformed file is a one-line error naming the file and the key."""

from __future__ import annotations

import tomllib

import pytest

from simulator.analytic.report import estimate
from simulator.runspec import RUN_FIELDS, build_run
from simulator.runspecfile import (
    KEY_KINDS,
    SPEC_KEYS,
    check_run_options,
    load_spec,
    load_spec_text,
    spec_from_data,
    spec_toml,
)

RUNS = {
    "v3-defaults": {},
    "llama-70b-h100-1f1b": {
        "model": "llama-3.1-70b", "gpu": "h100", "gpus": 1024, "tp": 8, "pp": 4, "schedule": "1f1b",
        "precision": "bf16", "tokens": 15e12,
    },
    "v3-interleaved-no-node-limit": {
        "gpus": 1024, "schedule": "interleaved", "pp": 8, "node_limit": None, "recompute": "full",
        "oversubscription": 2.0, "price_per_gpu_hour": 2.5, "expert_imbalance": 1.25, "ecmp": "spray",
    },
    "mixtral-long-zero3": {
        "model": "mixtral-8x7b", "node": "h800-ib", "gpus": 256, "pp": 4, "ep": 8, "seq_len": 16384,
        "global_batch_tokens": 16384 * 256, "schedule": "1f1b", "zero_stage": 3, "recompute": "full",
        "tokens": 2_000_000_000_000,
    },
}  # fmt: skip


def test_every_run_field_has_a_kind():
    """A RunSpec field added without a kind here would be refused in every file: the two lists are one."""
    assert set(KEY_KINDS) == {"model", "gpu", "node", *RUN_FIELDS}
    assert ("model", "gpu", "node", *RUN_FIELDS) == SPEC_KEYS


@pytest.mark.parametrize("name", sorted(RUNS))
def test_round_trip_gives_the_same_run_and_step_time(name):
    options = RUNS[name]
    text = spec_toml(options)
    assert text.startswith("# v3sim run spec") and "v3sim train --spec" in text
    back = load_spec_text(text, "x.toml")
    assert back == options
    run, again = build_run(options), build_run(back)
    assert again == run and again.defaults == run.defaults
    assert estimate(again).step_time_s == estimate(run).step_time_s


def test_node_limit_none_is_written_as_text_and_read_as_none():
    text = spec_toml({"node_limit": None})
    assert 'node_limit = "none"' in text
    assert load_spec_text(text, "x.toml") == {"node_limit": None}
    assert build_run(load_spec_text(text, "x.toml")).node_limit is None


def test_text_with_quotes_control_characters_and_unicode_survives(tmp_path):
    odd = 'odd "dir"\\\t\x7f\u00e9/config.json'
    text = spec_toml({"model": odd, "stage_layers": (4, 4)})
    assert tomllib.loads(text)["model"] == odd
    assert load_spec_text(text, "x.toml") == {"model": odd, "stage_layers": (4, 4)}


def test_relative_model_path_is_taken_from_the_specs_folder(tmp_path, monkeypatch):
    from workloads.registry import MODELS_DIR

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text((MODELS_DIR / "llama-3.1-8b.json").read_text())
    spec = tmp_path / "run.toml"
    spec.write_text('model = "m/config.json"\n')
    monkeypatch.chdir("/")
    assert load_spec(spec)["model"] == str(tmp_path / "m" / "config.json")
    assert build_run(load_spec(spec)).model.num_hidden_layers == 32


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("warp = 9", "unknown run option 'warp'; known: model, gpu, node, gpus,"),
        ('tp = "8"', "tp = '8' must be an integer"),
        ("tp = 8.0", "tp = 8.0 must be an integer"),
        ("tp = true", "tp = True must be an integer"),
        ("tokens = nan", "tokens = nan must be a finite number"),
        ("tokens = inf", "tokens = inf must be a finite number"),
        ('tokens = "15T"', "tokens = '15T' must be a finite number"),
        ("model = 3", "model = 3 must be a non-empty text"),
        ('model = " "', "model = ' ' must be a non-empty text"),
        ('node_limit = "all"', "node_limit = 'all' must be an integer or \"none\""),
        ("stage_layers = [1, 2.5]", "stage_layers = [1, 2.5] must be a list of integers"),
        ("stage_layers = []", "stage_layers = [] must be a list of integers"),
        ("[run]\ntp = 8", "unknown run option 'run'"),
        ('gpu = "h100"\nnode = "h800-ib"', "give gpu or node, not both"),
        ("tp = ", "is not valid TOML"),
        ("a.b.c = 1\n" * 2, "is not valid TOML"),
        ("x = " + "[" * 5000 + "]" * 5000, "x.toml"),
    ],
)
def test_malformed_spec_is_one_line_error_naming_file_and_key(text, message):
    with pytest.raises(ValueError) as err:
        load_spec_text(text, "x.toml")
    shown = str(err.value)
    assert message in shown and "x.toml" in shown and "\n" not in shown


def test_spec_file_limits_and_missing_files(tmp_path):
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * (1 << 20) + "\n")
    with pytest.raises(ValueError, match="limit is 1,048,576"):
        load_spec(big)
    with pytest.raises(ValueError, match="cannot read run spec"):
        load_spec(tmp_path / "none.toml")
    with pytest.raises(ValueError, match="is a folder"):
        load_spec(tmp_path)
    with pytest.raises(ValueError, match="over the limit"):
        load_spec_text("#" * ((1 << 20) + 1), "y.toml")


def test_spec_toml_refuses_what_a_file_cannot_hold():
    from workloads.registry import load_model

    with pytest.raises(ValueError, match=r"preset slug or a config\.json path"):
        spec_toml({"model": load_model("deepseek-v3")})
    with pytest.raises(ValueError, match="unknown run option 'warp'"):
        spec_toml({"warp": 9})
    with pytest.raises(ValueError, match="tokens = inf must be a finite number"):
        spec_toml({"tokens": float("inf")})


def test_checking_is_shared_with_run_plans():
    """Run plans' [run] and phase options go through the same check: a type error is found at load."""
    from simulator.runplan import plan_from_dict

    with pytest.raises(ValueError, match=r"plan \[run\]: tp = '8' must be an integer"):
        plan_from_dict({"run": {"tp": "8"}, "phase": [{"name": "a", "gpu_hours": 1.0}]})
    assert check_run_options({"stage_layers": [1, 2]}, "here") == {"stage_layers": (1, 2)}
    assert spec_from_data({}, "empty.toml") == {}
