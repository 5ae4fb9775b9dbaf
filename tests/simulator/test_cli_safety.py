"""The command line's contract with bad input: one line and exit 2 for bad input, one line and exit 1 for a
failure of v3sim, 130 on Ctrl-C, quiet on a closed pipe, strict JSON, outputs never half-written, sizes bounded
where they enter. Ends in a hypothesis fuzz over the sub-commands' options."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator import cli
from simulator.cli import main
from simulator.runspec import build_run
from tests.hang import no_hang

HANG_S = 60  # a hang detector, not a speed check: the slowest case here takes a few seconds


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def strict_json(text: str):
    def refuse(name):
        raise AssertionError(f"non-JSON constant {name} in the output")

    return json.loads(text, parse_constant=refuse)


# --- exit statuses ---------------------------------------------------------------------------------------


def test_bad_input_is_exit_2_in_one_line(capsys):
    code, out, err = run(capsys, "train", "--pp", "7")
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("v3sim train: error: ")


def test_help_is_exit_0(capsys):
    assert main(["--help"]) == 0
    assert "usage: v3sim" in capsys.readouterr().out


def _raising(exc: BaseException):
    def command(args):
        raise exc

    return command


def test_a_failure_of_v3sim_is_exit_1_in_one_line(capsys, monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "model", (_raising(RuntimeError("broken\ninside")), print))
    code, out, err = run(capsys, "model", "deepseek-v3")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "failed (RuntimeError" in err and "--debug" in err and "broken inside" in err


def test_debug_shows_the_traceback(capsys, monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "model", (_raising(RuntimeError("broken")), print))
    with pytest.raises(RuntimeError, match="broken"):
        main(["model", "deepseek-v3", "--debug"])


def test_ctrl_c_is_exit_130(capsys, monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "model", (_raising(KeyboardInterrupt()), print))
    code, _, err = run(capsys, "model", "deepseek-v3")
    assert code == 130 and err == "v3sim model: interrupted\n"


def test_out_of_memory_is_exit_1(capsys, monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "model", (_raising(MemoryError()), print))
    code, _, err = run(capsys, "model", "deepseek-v3")
    assert code == 1 and "out of memory" in err and err.count("\n") == 1


def test_error_messages_lose_control_characters(capsys, monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "model", (_raising(ValueError("bad \x1b[2J\x1b[31mname\x07")), print))
    code, _, err = run(capsys, "model", "deepseek-v3")
    assert code == 2 and "\x1b" not in err and "\x07" not in err and "bad [2J[31mname" in err


def test_json_output_is_strict(capsys, monkeypatch):
    """A NaN in a result is a failure of v3sim (exit 1), never `NaN` printed with status 0."""
    monkeypatch.setitem(cli.COMMANDS, "model", (lambda args: {"x": math.nan}, print))
    code, out, err = run(capsys, "model", "deepseek-v3", "--json")
    assert code == 1 and out == "" and "JSON cannot carry" in err


def test_a_closed_pipe_is_quiet():
    """`v3sim ... | head -1`: the reader goes away; no traceback, no 'Exception ignored' on stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator.cli", "hardware", "gpus"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    proc.stdout.read(1)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=HANG_S)
    assert "Traceback" not in err and "Exception ignored" not in err and "Broken pipe" not in err


# --- inputs refused where they enter ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--model", ""], "an empty name"),
        (["train", "--gpu", " "], "an empty name"),
        (["serve", "--node", ""], "an empty name"),
        (["train", "--profile", ""], "an empty name"),
        (["model", ""], "an empty name"),
        (["train", "--tokens", "nan"], "not a finite number"),
        (["train", "--tokens", "inf"], "not a finite number"),
        (["train", "--oversubscription", "nan"], "not a finite number"),
        (["train", "--expert-imbalance", "inf"], "not a finite number"),
        (["train", "--price-per-gpu-hour", "nan"], "not a finite number"),
        (["serve", "--mtp-acceptance", "nan"], "not a finite number"),
        (["serve", "--cache-hit=-inf"], "not a finite number"),
        (["collective", "all-to-all", "--bytes-per-gpu", "nan"], "not a finite number"),
        (["simulate", "--straggler-rate", "nan"], "not a finite number"),
        (["simulate", "--expert-cv", "inf"], "not a finite number"),
        (["train", "--seed", "1"], "unrecognized arguments"),
        (["train", "--seq-len", "100000000"], "limit of 16,777,216"),
        (["kv", "deepseek-v3", "--context", "100000000"], "limit of 16,777,216"),
        (["kv", "deepseek-v3", "--batch", "10000000"], "limit of 1,048,576"),
        (["collective", "all-to-all", "--gpus", "10000000"], "limit of 1,048,576"),
        (["topology", "fat-tree-3", "--radix", "100000"], "limit of 1,024"),
        (["collective", "all-to-all", "--seed", "1" * 30], "too large"),
        (["train", "--schedule", "interleaved", "--virtual-stages", "1000"], "use virtual_stages <= 3"),
        (["simulate", "--trace", "/nonexistent/dir/x.json"], "the folder /nonexistent/dir does not exist"),
        (["simulate", "--trace", "step.txt"], "use a .json file"),
        (["simulate", "--links", "links.json"], "use a .csv file"),
        (["calibrate", "run", "--out", "/nonexistent/p.json"], "does not exist"),
        (["calibrate", "publish", "--out-dir", "/nonexistent"], "is not a folder"),
    ],
)
def test_bad_options_are_one_line_errors(capsys, argv, message):
    with no_hang():
        code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1


def test_two_outputs_to_one_file_are_refused_before_the_work(capsys, tmp_path):
    path = str(tmp_path / "both.json")
    code, _, err = run(capsys, "simulate", "--trace", path, "--links", path.replace(".json", ".json"))
    assert code == 2 and "give each its own file" in err


def test_the_event_model_refuses_a_step_too_large_to_simulate(capsys):
    with no_hang():
        code, _, err = run(
            capsys, "simulate", "--network", "analytic", "--schedule", "1f1b", "--global-batch-tokens", "25165824000"
        )
    assert code == 2 and "beyond the event model's limit of 500,000" in err


def test_the_flow_model_refuses_what_would_exhaust_memory(capsys):
    """65,536 GPUs all-to-all: 537 million forwarded legs, refused with the figure before anything is allocated."""
    with no_hang():
        code, _, err = run(capsys, "collective", "all-to-all", "--gpus", "65536", "--topology", "fat-tree-3")
    assert code == 2 and "242 GB in the flow model" in err and "limit of 4 GB" in err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"oversubscription": "1"}, "must be a number"),
        ({"oversubscription": math.nan}, "must be a finite number"),
        ({"price_per_gpu_hour": math.nan}, "must be a finite number"),
        ({"price_per_gpu_hour": math.inf}, "must be a finite number"),
        ({"tokens": -1e12}, "must be positive"),
        ({"tokens": True}, "must be a number"),
        ({"zero_stage": 1.5}, "must be an integer"),
        ({"gpus": 1 << 30}, "beyond the model's limit"),
        ({"gpu": ""}, "gpu is empty"),
        ({"node": "  "}, "node is empty"),
    ],
)
def test_build_run_checks_every_field(options, message):
    with pytest.raises(ValueError, match=message):
        build_run(options)


# --- outputs are never half-written -------------------------------------------------------------------------


def test_a_failed_trace_write_leaves_the_old_file(capsys, tmp_path, monkeypatch):
    import simulator.events.engine

    trace = tmp_path / "step.json"
    trace.write_text("the previous trace")

    def broken(timeline):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(simulator.events.engine, "to_chrome_trace", broken)
    code, _, err = run(capsys, "simulate", "--network", "analytic", "--trace", str(trace))
    assert code == 2 and "cannot write the trace" in err and "No space left" in err
    assert trace.read_text() == "the previous trace"
    assert list(tmp_path.iterdir()) == [trace]  # no temporary file left behind


def test_a_trace_is_written_whole(capsys, tmp_path):
    trace = tmp_path / "step.json"
    code, out, _ = run(capsys, "simulate", "--network", "analytic", "--trace", str(trace), "--json")
    assert code == 0 and strict_json(out)["trace"] == str(trace)
    assert strict_json(trace.read_text())["traceEvents"]
    assert list(tmp_path.iterdir()) == [trace]


# --- fuzz ------------------------------------------------------------------------------------------------

JUNK = st.sampled_from(["", " ", "nan", "NaN", "inf", "-inf", "1e400", "-1", "0", "1.5", "abc", "\x1b[2J", "9" * 40])
INTS = st.one_of(st.integers(-3, 300).map(str), st.sampled_from(["1048577", "4096", "65536"]), JUNK)
FLOATS = st.one_of(st.floats(-5, 1e3, allow_nan=False).map(repr), JUNK)
NAMES = st.one_of(
    st.sampled_from(["deepseek-v3", "llama-3.1-8b", "mixtral-8x7b", "h800", "a100", "gb200", "/dev/zero"]), JUNK
)

COMMAND_OPTIONS = {
    "train": {
        "--model": NAMES,
        "--gpu": NAMES,
        "--gpus": INTS,
        "--tp": INTS,
        "--pp": INTS,
        "--ep": INTS,
        "--virtual-stages": INTS,
        "--schedule": st.sampled_from(["1f1b", "interleaved", "zb1p", "dualpipe", "dualpipev", "x"]),
        "--seq-len": INTS,
        "--micro-batch": INTS,
        "--global-batch-tokens": st.one_of(st.sampled_from(["63M", "4M", "1T", "0.5k"]), JUNK),
        "--oversubscription": FLOATS,
        "--expert-imbalance": FLOATS,
        "--tokens": st.one_of(st.sampled_from(["14.8T", "1k", "1e19"]), JUNK),
        "--price-per-gpu-hour": FLOATS,
        "--comm-sms": INTS,
        "--zero": INTS,
        "--node-limit": INTS,
        "--profile": st.one_of(st.sampled_from(["sol", "published", "measured"]), JUNK),
    },
    "serve": {
        "--model": NAMES,
        "--gpu": NAMES,
        "--ep": INTS,
        "--tp": INTS,
        "--batch": INTS,
        "--context": INTS,
        "--redundant": INTS,
        "--mtp-acceptance": FLOATS,
        "--cache-hit": FLOATS,
        "--output-tokens": INTS,
        "--price-per-gpu-hour": FLOATS,
    },
    "memory": {"--pp": INTS, "--dp": INTS, "--ep": INTS, "--batch": INTS, "--context": INTS, "--zero": INTS},
    "kv": {"--context": INTS, "--batch": INTS},
    "topology": {"--radix": INTS, "--planes": INTS, "--endpoints": INTS, "--oversubscription": FLOATS},
    "collective": {
        "--gpus": st.one_of(st.sampled_from(["8", "16", "64", "12", "0"]), JUNK),
        "--bytes-per-gpu": FLOATS,
        "--radix": st.sampled_from(["16", "32", "64", "7"]),
        "--seed": INTS,
    },
}
POSITIONAL = {
    "memory": ["deepseek-v3"],
    "kv": ["deepseek-v3", "llama-3.1-8b"],
    "topology": ["multi-plane"],
    "collective": ["all-reduce"],
}


@st.composite
def command_lines(draw):
    command = draw(st.sampled_from(sorted(COMMAND_OPTIONS)))
    options = COMMAND_OPTIONS[command]
    chosen = draw(st.lists(st.sampled_from(sorted(options)), max_size=4, unique=True))
    argv = [command, *POSITIONAL.get(command, [])]
    for option in chosen:
        argv += [option, draw(options[option])]
    return [*argv, "--json"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=command_lines())
def test_fuzz_the_command_line(capsys, argv):
    """Random options, valid and not: an answer in strict JSON with finite numbers, or one line with exit 2.
    Never a traceback, a failure of v3sim (exit 1), a hang or a non-finite number."""
    with no_hang():
        code, out, err = run(capsys, *argv)
    assert code in (0, 2), (argv, err)
    if code == 0:
        strict_json(out)
    else:
        assert out == "" and err.count("\n") == 1 and "Traceback" not in err, (argv, err)


@pytest.mark.parametrize("path", ["/dev/zero", "fifo"])
def test_special_files_are_refused_not_read_forever(capsys, tmp_path, path):
    if path == "fifo":
        path = str(tmp_path / "config.json")
        os.mkfifo(path)
    for argv in (["model", path], ["hardware", "gpus", path], ["train", "--profile", path]):
        with no_hang(20):
            code, _, err = run(capsys, *argv)
        assert code == 2 and err.count("\n") == 1, (argv, err)


def test_names_from_files_print_without_control_characters(capsys, tmp_path):
    """A config.json whose name carries terminal escapes (clear screen, a fake prompt) prints as plain text."""
    config = json.loads(Path("workloads/data/models/llama-3.1-8b.json").read_text())
    config["_name_or_path"] = "evil\x1b[2J\x1b]0;owned\x07\u202ename"
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    code, out, _ = run(capsys, "model", str(path))
    assert code == 0 and "evil" in out
    assert not any(ord(c) < 32 and c != "\n" for c in out) and "\u202e" not in out


def test_a_local_dask_cluster_listens_on_loopback_only():
    """What the README promises: `--workers N` starts a scheduler and workers reachable from this machine only."""
    pytest.importorskip("dask.distributed")
    from simulator.explore.sweep import _dask_client

    client, cluster = _dask_client(1, None)
    try:
        addresses = [cluster.scheduler_address, *client.scheduler_info()["workers"]]
        assert all(a.startswith("tcp://127.0.0.1:") for a in addresses), addresses
    finally:
        client.close()
        cluster.close()


def test_a_switch_graph_too_large_for_memory_is_refused(tmp_path):
    """A custom 1,024-port switch lets a fat tree hold a million GPUs; its networkx graph is refused, with
    the figure, before it is built."""
    from hwmodels.registry import load_node
    from hwmodels.routing import build_fabric
    from hwmodels.specs import SwitchSpec
    from hwmodels.topology import design_topology

    big = SwitchSpec("big", 1024, 400e9, 1e-7, 1e4, 100, "test", "test")
    spec = design_topology("fat-tree-3", 1024, 1 << 20)
    with no_hang(), pytest.raises(ValueError, match="beyond the flow model's limit of 500,000"):
        build_fabric(spec, load_node("h800-ib"), big, 1 << 20)
