"""The front door: the `v3sim` command, the only part of the simulator that parses arguments or prints.

`main.py` builds the parser from names alone (no engine import) and runs a sub-command's handler, which
imports what it needs; `inspect.py` (model, kv, memory, comm, hardware, topology, collective, report),
`train.py` (train, simulate, validate), `serve.py`, `sweep.py` (sweep, best-layout) and `calibrate.py` hold
the handlers and their printouts; `runopts.py` the run options training commands share (and run-spec files
beside them); `args.py` the typed, bounded option types (one parser of numbers, suffixes included);
`plausible.py` the implausible inputs refused with a hint; `helpfmt.py` the help formatter that shows
defaults; `format.py` the text helpers.
Nothing else imports this package.
"""

from __future__ import annotations

from simulator.cli.main import COMMANDS, build_parser, main

__all__ = ["COMMANDS", "build_parser", "main"]
