"""Reading and writing a user's files safely: data only, bounded, never half-written.

Every file v3sim reads from a user (config.json, hardware TOML, kernel profiles, sweeps) goes through
`read_text`: a regular file only (a FIFO or /dev/zero would be read forever), at most `max_bytes`, UTF-8.
JSON is parsed strictly (`NaN` and `Infinity` are not JSON numbers and are refused). Every file v3sim
writes goes through `write_atomic`: a temporary file beside the target, renamed over it once complete,
so an interrupted run never leaves a truncated result where a good one was. Names read from files are
shown through `clean_text`, so a name cannot carry terminal escape sequences.

This module is the bottom of the stack (it imports nothing of v3sim), so that every package can use it.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import stat
import tomllib
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeGuard

MAX_CONFIG_BYTES = 1 << 20  # 1 MiB: a config.json, a hardware TOML or a sweep is a few KiB
MAX_PROFILE_BYTES = 64 << 20  # 64 MiB: a kernel profile carries its samples (the shipped ones are < 1 MiB)


def read_text(path: str | Path, what: str, max_bytes: int = MAX_CONFIG_BYTES) -> str:
    """The text of a regular file of at most `max_bytes`, or a one-line ValueError naming `what` and the fix.

    An empty path (Path("") is the current folder) or one holding a NUL is refused; the error shows the path
    without control characters and cut to 80 characters, so the reason survives a 5,000-character name."""
    if not str(path).strip() or "\0" in str(path):
        raise ValueError(f"{what} path {clean_text(repr(str(path)), 80)} is empty or holds a NUL; give a file")
    try:
        return _read_text(Path(path), what, max_bytes)
    except ValueError as err:
        raise ValueError(clean_text(str(err).replace(str(path), clean_text(path, 80)), 400)) from None


def _read_text(path: Path, what: str, max_bytes: int) -> str:
    try:
        info = path.stat()
    except OSError as exc:
        raise ValueError(f"cannot read {what} {path}: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ValueError(f"{what} {path} is a folder; give a file")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{what} {path} is not a regular file (a pipe or a device); give a file")
    if info.st_size > max_bytes:
        raise ValueError(f"{what} {path} is {info.st_size:,} bytes; the limit is {max_bytes:,}")
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)  # the file may have grown since stat
    except OSError as exc:
        raise ValueError(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(data) > max_bytes:
        raise ValueError(f"{what} {path} is over the limit of {max_bytes:,} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None


def loads_toml(text: str, where: str) -> dict[str, Any]:
    """TOML text parsed as data; any defect (a date that does not exist, an integer of 5,000 digits, deep
    nesting) is a one-line ValueError naming `where`."""
    try:
        return tomllib.loads(text)
    except ValueError as err:  # TOMLDecodeError is one
        raise ValueError(f"{where} is not valid TOML: {clean_text(err, 200)}") from None
    except RecursionError:
        raise ValueError(f"{where} is nested too deeply") from None


def path_is(path: Path, test: Callable[[Path], bool]) -> bool:
    """`test(path)` (Path.exists, Path.is_dir), False for a name no file can have (too long, a NUL in it)
    where pathlib would raise."""
    try:
        return test(path)
    except (OSError, ValueError):
        return False


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows; write a finite number")


def loads_json(text: str, where: str) -> Any:
    """JSON text parsed strictly: NaN, Infinity and -Infinity are refused, errors name `where`."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    except RecursionError:
        raise ValueError(f"{where} is nested too deeply") from None


def dumps_json(data: Any, indent: int | None = None) -> str:
    """Strict JSON: a NaN or an infinity in `data` is a ValueError, never the non-JSON token `NaN`."""
    return json.dumps(data, indent=indent, allow_nan=False)


def is_finite_number(value: object) -> TypeGuard[int | float]:
    """Whether `value` is a number (an int or a float, never a bool) that float64 holds as a finite value:
    not NaN, not an infinity, not an integer beyond 1.8e308 (where math.isfinite raises)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def check_finite(value: Any, name: str) -> None:
    """Raise ValueError if `value` is a float that is NaN or infinite."""
    if isinstance(value, float) and not is_finite_number(value):
        raise ValueError(f"{name}={value} must be a finite number")


def clean_text(text: object, max_chars: int | None = 200, keep: str = "") -> str:
    """`text` without control and format characters (terminal escapes, bidi overrides) other than those in
    `keep` (e.g. "\n"), cut to `max_chars` (None: any length)."""
    bad = ("Cc", "Cf", "Cs", "Co", "Cn")
    kept = "".join(c for c in str(text) if c in keep or unicodedata.category(c) not in bad)
    return kept if max_chars is None or len(kept) <= max_chars else kept[: max_chars - 1] + "…"


def check_output(path: str | Path, suffixes: Iterable[str], what: str) -> Path:
    """`path` as a place to write `what`: its suffix one of `suffixes`, its folder existing and writable,
    not a folder itself. Checked before the work starts, so a long run never ends in a lost result."""
    path = Path(path)
    suffixes = tuple(suffixes)
    if path.suffix not in suffixes:
        raise ValueError(f"{what} {path}: use a {' or '.join(suffixes)} file")
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder; give a file name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"{what} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {path}: the folder {folder} is not writable")
    if path.exists() and not path.is_file():
        raise ValueError(f"{what} {path} exists and is not a regular file")
    return path


def check_distinct_outputs(paths: dict[str, str | Path | None]) -> None:
    """Refuse two outputs to one file ({option: path}, None for an output not asked for)."""
    seen: dict[Path, str] = {}
    for option, p in paths.items():
        if p is None:
            continue
        key = Path(p).resolve()
        if key in seen:
            raise ValueError(f"{seen[key]} and {option} both write {p}; give each its own file")
        seen[key] = option


def write_atomic(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call `write(tmp)` on a fresh temporary file beside `path`, then rename it over `path`.

    The rename is atomic on one file system: readers see the old file or the whole new one, and a failed
    or interrupted write leaves the target as it was (the temporary file is removed). The temporary file is
    created exclusively with mode 0o666 less the umask, as the target would have been."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    tmp = folder / f".{path.name}.{secrets.token_hex(8)}.tmp{path.suffix}"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def with_block(text: str, name: str, body: str) -> str:
    """`text` with the generated block `name` (between `<!-- NAME: begin ... -->` and `<!-- NAME: end -->`)
    holding `body`: how `make docs` and `make bench` keep the tables in the docs current."""
    import re

    pattern = re.compile(rf"(<!-- {re.escape(name)}: begin[^>]*-->\n)(.*?)(<!-- {re.escape(name)}: end -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"no block {name!r}")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(3), text)
