"""The command line's traps (issue 23): suffixed numbers on every numeric option, implausible inputs refused
with a hint naming the flag, defaults in `--help`, and run-spec files (`--spec`, `--save-spec`)."""

from __future__ import annotations

import argparse
import json
from decimal import Decimal

import pytest

from simulator.cli import args as cli_args
from simulator.cli import build_parser, main
from simulator.cli.helpfmt import DefaultsHelp, shown_default
from simulator.cli.runopts import RUN_HELP, TRAIN_OPTIONS


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, *argv: str) -> str:
    """The one error line of a command that must exit 2."""
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    return err


# --- one parser of numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("15T", 15 * 10**12), ("14.8T", 148 * 10**11), ("128k", 128_000), ("128K", 128_000), ("1M", 10**6),
        ("2G", 2 * 10**9), ("2B", 2 * 10**9), ("64Ki", 65_536), ("1Mi", 1 << 20), ("2Gi", 2 << 30),
        ("1Ti", 1 << 40), ("2.5e12", Decimal("2.5e12")), ("4096", 4096), ("0.85", Decimal("0.85")),
        ("1.1k", 1100), (" 7 ", 7), ("-3", -3),
    ],
)  # fmt: skip
def test_quantity_reads_plain_scientific_decimal_and_binary_suffixes(text, value):
    assert cli_args.quantity(text) == value


@pytest.mark.parametrize("text", ["", "k", "1.5x", "0x10", "1e5k5", "12 34", "١٢", "1,000", "Ki", "1kk", "1e99999"])
def test_quantity_refuses_what_is_not_a_number(text):
    with pytest.raises(argparse.ArgumentTypeError, match=r"not a number|not a finite number"):
        cli_args.number(text)


def test_integers_are_exact_after_the_suffix():
    assert cli_args.integer("1.1k") == 1100 and cli_args.integer("14.8T") == 14_800_000_000_000
    assert cli_args.whole_count("60Mi") == 62_914_560 and cli_args.seq_tokens("128Ki") == 131_072
    with pytest.raises(argparse.ArgumentTypeError, match=r"'1.0005k' is not a whole number, e.g. 4096, 128k"):
        cli_args.integer("1.0005k")
    with pytest.raises(argparse.ArgumentTypeError, match="too large"):
        cli_args.integer("2000000T")


def _actions(parser: argparse.ArgumentParser, prefix: str = ""):
    """(command, action) for every action of every sub-command, nested ones too (calibrate run)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{prefix} {name}".strip())
        else:
            yield prefix, action


NUMERIC = {
    cli_args.number, cli_args.nonnegative, cli_args.positive_number, cli_args.fraction, cli_args.fractions,
    cli_args.integer, cli_args.positive, cli_args.count, cli_args.whole_count,
}  # fmt: skip


def test_every_numeric_option_reads_through_the_one_parser():
    """Every `type=` of every sub-command is one of simulator/cli/args.py's (or a bounded one made there, or
    simulate's --expert-cv, which adds 'uniform' to nonnegative): no command parses numbers its own way."""
    seen = 0
    for command, action in _actions(build_parser()):
        kind = action.type
        if kind is None or kind is cli_args.name:
            continue
        assert kind in NUMERIC or kind.__module__ == "simulator.cli.args" or kind.__name__ == "_expert_cv", (
            command,
            action.dest,
        )
        seen += 1
        try:  # a suffixed number is read as a number everywhere; only a range may refuse it
            kind("1k")
        except argparse.ArgumentTypeError as err:
            assert "not a number" not in str(err) and "not a whole" not in str(err), (command, action.dest, err)
    assert seen > 100


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["train", "--tp", "1.5"], "--tp"),
        (["serve", "--context", "4.0001k"], "--context"),
        (["kv", "deepseek-v3", "--batch", "2.5"], "--batch"),
        (["collective", "all-to-all", "--gpus", "1.0001k"], "--gpus"),
    ],
)
def test_a_fractional_integer_names_the_flag_and_the_forms(capsys, argv, flag):
    err = refused(capsys, *argv)
    assert f"argument {flag}" in err and "not a whole number" in err and "64Ki" in err


def test_suffixed_inputs_run(capsys):
    code, out, _ = run(capsys, "kv", "deepseek-v3", "--context", "128k", "--batch", "1", "--json")
    (row,) = json.loads(out)
    assert code == 0 and row["context"] == 128_000 and row["kv_bytes_total"] == 70_272 * 128_000
    code, out, _ = run(capsys, "kv", "deepseek-v3", "--context", "128Ki", "--json")
    assert code == 0 and json.loads(out)[0]["kv_bytes_total"] == 70_272 * 131_072
    code, out, _ = run(capsys, "collective", "all-to-all", "--gpus", "64", "--bytes-per-gpu", "100M", "--json")
    assert code == 0 and json.loads(out)["bytes_per_gpu"] == 100e6


# --- implausible inputs refused with a hint -------------------------------------------------------------------


def test_train_refuses_a_token_budget_under_one_step(capsys):
    err = refused(capsys, "train", "--tokens", "15")
    assert "--tokens 15 is fewer tokens than one step's global batch of 62,914,560 tokens" in err
    assert "--global-batch-tokens" in err and "did you mean 15T?" in err
    err = refused(capsys, "train", "--tokens", "20M", "--global-batch-tokens", "60Mi")
    assert "--tokens 20,000,000" in err and "(--global-batch-tokens)" in err and "did you mean" not in err
    err = refused(capsys, "best-layout", "--tokens", "15")
    assert "did you mean 15T?" in err


def test_train_at_the_suggestion_answers(capsys):
    code, out, _ = run(capsys, "train", "--tokens", "15T", "--goodput", "off", "--json")
    data = json.loads(out)
    assert code == 0 and data["run"]["tokens"] == 15e12 and data["gpu_hours"] > 1e6


def test_train_refuses_a_global_batch_under_one_sequence(capsys):
    err = refused(capsys, "train", "--global-batch-tokens", "63")
    assert "--global-batch-tokens 63 is less than one 4,096-token sequence; did you mean 63M?" in err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["serve", "--context", "200k"], "--context 200,000 is beyond deepseek-v3's 163,840-token context"),
        (["serve-search", "--tpot-ms", "50", "--context", "1Mi"], "--context 1,048,576 is beyond deepseek-v3's"),
        (["kv", "deepseek-v3", "mixtral-8x7b", "--context", "128k"], "beyond mixtral-8x7b's 32,768-token context"),
        (["memory", "deepseek-v3", "--context", "256Ki"], "--context 262,144 is beyond"),
        (["memory", "llama-3.1-8b", "--seq-len", "1M"], "--seq-len 1,000,000 is beyond llama-3.1-8b's 131,072"),
        (["model", "qwen3-30b-a3b", "--seq-len", "64k"], "--seq-len 64,000 is beyond qwen3-30b-a3b's 40,960"),
        (["ops", "deepseek-v3", "--seq-len", "1M"], "--seq-len 1,000,000 is beyond"),
        (["train", "--seq-len", "1M"], "--seq-len 1,000,000 is beyond deepseek-v3's 163,840-token context"),
    ],
)
def test_a_context_beyond_the_model_names_the_flag(capsys, argv, words):
    err = refused(capsys, *argv)
    assert words in err and "max_position_embeddings" in err and "_len=" not in err


def test_a_context_the_model_reaches_runs(capsys):
    code, out, _ = run(capsys, "model", "llama-3.1-8b", "--seq-len", "128Ki", "--json")
    assert code == 0 and json.loads(out)["seq_len"] == 131_072


# --- --help shows defaults ------------------------------------------------------------------------------------


def test_every_option_with_a_default_says_it():
    formatter = DefaultsHelp("v3sim")
    missing = []
    for command, action in _actions(build_parser()):
        default = action.default
        if default is None or default is argparse.SUPPRESS or isinstance(default, bool) or action.required:
            continue
        if not action.option_strings and action.nargs != "?":
            continue
        if "default" not in formatter._get_help_string(action).lower():
            missing.append(f"{command} {action.dest}")
    assert not missing


@pytest.mark.parametrize(("command", "phrase"), [(["train"], "(default: V3's 64, or the largest degree below it"),
                                                 (["kv", "x"], "(default: 4096)"), (["memory", "x"], "(default: 1)"),
                                                 (["serve"], "(default: fp8 where the GPU has fp8"),
                                                 (["sweep", "x"], "(default 10)")])  # fmt: skip
def test_help_reads_with_defaults(capsys, command, phrase):
    assert main([command[0], "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert phrase in out and "(default: None)" not in out


def test_every_run_option_says_its_default_and_each_number_is_runspecs():
    """The run options' defaults are said in words; where a number is written, it is RunSpec's own."""
    from simulator.presets import V3_LAYOUT
    from simulator.runspec import RUN_DEFAULTS

    assert set(RUN_HELP) == set(TRAIN_OPTIONS)
    for option, field in TRAIN_OPTIONS.items():
        text = RUN_HELP[option]
        assert "default" in text, option
        value = RUN_DEFAULTS[field]
        if isinstance(value, str):
            said = (f"default {value}", f"default: {value} ", f"{value} (static ECMP, default", f"{value} (default)")
            assert any(words in text for words in said), option
        elif value is not None and field not in ("ep", "global_batch_tokens", "virtual_stages"):
            assert f"default {shown_default(value).replace('14800G', '14.8T')}" in text, option
    assert f"V3's {V3_LAYOUT.ep}" in RUN_HELP["ep"]


# --- run-spec files on the command line ---------------------------------------------------------------------


def test_save_spec_then_spec_runs_the_same_run(capsys, tmp_path):
    path = tmp_path / "run.toml"
    argv = ["train", "--gpu", "h100", "--gpus", "1024", "--schedule", "1f1b", "--tokens", "1T", "--goodput", "off"]
    code, out, _ = run(capsys, *argv, "--save-spec", str(path), "--json")
    first = json.loads(out)
    assert code == 0 and first["saved_spec"] == str(path)
    assert path.read_text().startswith("# v3sim run spec")
    code, out, _ = run(capsys, "train", "--spec", str(path), "--goodput", "off", "--json")
    again = json.loads(out)
    assert code == 0 and again["run"] == first["run"]
    assert again["step_time_s"] == first["step_time_s"] and again["gpu_hours"] == first["gpu_hours"]
    code, out, _ = run(capsys, *argv, "--save-spec", str(tmp_path / "b.toml"))
    assert code == 0 and f"run spec written to {tmp_path / 'b.toml'}" in out


def test_command_line_options_override_the_spec(capsys, tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('gpu = "h100"\ngpus = 1024\nschedule = "1f1b"\ntokens = 1e12\n')
    code, out, _ = run(capsys, "train", "--spec", str(path), "--gpus", "512", "--goodput", "off", "--json")
    r = json.loads(out)["run"]
    assert code == 0 and (r["gpus"], r["gpu"], r["schedule"], r["tokens"]) == (512, "h100", "1f1b", 1e12)
    code, out, _ = run(capsys, "train", "--spec", str(path), "--node", "h800-ib", "--goodput", "off", "--json")
    r = json.loads(out)["run"]
    assert code == 0 and (r["gpus"], r["gpu"]) == (1024, "h800")  # --node replaces the file's gpu
    code, out, _ = run(capsys, "train", "--spec", str(path), "--model", "llama-3.1-8b", "--goodput", "off", "--json")
    assert code == 0 and json.loads(out)["run"]["model"] == "llama-3.1-8b"


def test_saved_config_path_is_absolute_and_runs_from_elsewhere(capsys, tmp_path, monkeypatch):
    from workloads.registry import MODELS_DIR

    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg.json").write_text((MODELS_DIR / "llama-3.1-8b.json").read_text())
    argv = ["train", "--model", "cfg.json", "--gpus", "128", "--goodput", "off", "--save-spec", "s.toml", "--json"]
    code, out, _ = run(capsys, *argv)
    assert code == 0 and f'model = "{tmp_path / "cfg.json"}"' in (tmp_path / "s.toml").read_text()
    monkeypatch.chdir("/")
    code, again, _ = run(capsys, "train", "--spec", str(tmp_path / "s.toml"), "--goodput", "off", "--json")
    assert code == 0 and json.loads(again)["step_time_s"] == json.loads(out)["step_time_s"]


@pytest.mark.parametrize(
    ("text", "extra", "message"),
    [
        ("tp = '8'", [], "run spec run.toml: tp = '8' must be an integer"),
        ("warp = 1", [], "unknown run option 'warp'; known: model, gpu, node"),
        ("tokens = 15", [], "run spec run.toml: tokens = 15 is fewer tokens than one step's global batch"),
        ("seq_len = 1000000", [], "run spec run.toml: seq_len = 1,000,000 is beyond deepseek-v3's"),
        ("tp = 3", [], "tp*pp=48 must divide gpus=2048"),
        ("", ["--plan", "deepseek-v3"], "drop --spec"),
        ("", ["--save-spec", "out.json"], "--save-spec out.json: use a .toml file"),
    ],
)
def test_bad_specs_are_one_line_errors(capsys, tmp_path, monkeypatch, text, extra, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.toml").write_text(text + "\n")
    err = refused(capsys, "train", "--spec", "run.toml", *extra)
    assert message in err
    assert not (tmp_path / "out.json").exists()


def test_stage_layers_pin_a_pipeline_layout(capsys):
    """`--stage-layers` poses a recipe's own split (Megatron-Bridge's DeepSeek-V3 on PP16: four layers a stage,
    one on the last beside MTP and the loss), where v3sim's balancer would choose another; a wrong count is a
    one-line error."""
    assert cli_args.int_list("4, 4,1") == (4, 4, 1)
    with pytest.raises(argparse.ArgumentTypeError, match="whole numbers >= 0"):
        cli_args.int_list("4,-1")
    base = ["train", "--gpu", "b200", "--gpus", "256", "--pp", "16", "--ep", "8", "--schedule", "1f1b", "--json"]
    assert main(base) == 0
    own = json.loads(capsys.readouterr().out)
    assert main([*base, "--stage-layers", ",".join(["4"] * 15 + ["1"])]) == 0
    pinned = json.loads(capsys.readouterr().out)
    assert pinned["stage_layers"] == [4] * 15 + [1] != own["stage_layers"]
    assert pinned["step_time_s"] >= own["step_time_s"]  # the balancer's split is never the slower
    assert main([*base, "--stage-layers", "4,4"]) == 2
    assert "stage_layers=[4, 4] must give pp=16" in capsys.readouterr().err
