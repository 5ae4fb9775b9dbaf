"""`--help` that shows every option's default: one formatter, not hundreds of hand-written "(default: X)".

An option whose help already says its default (the word "default" is in it: engine-derived defaults are
written in words there, "default: V3's 64, or ...") is left as written; any other option with a value
default gets " (default: X)" added, X written as a user would type it back (256M, not 256000000.0).
"""

from __future__ import annotations

import argparse
import copy

_SCALES = ((10**12, "T"), (10**9, "G"), (10**6, "M"))


def shown_default(value: object) -> str:
    """`value` as it would be typed on the command line: 2048, 0.85, 256M, bf16, 0.85,0.7."""
    if isinstance(value, tuple | list):
        return ",".join(shown_default(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        for scale, suffix in _SCALES:
            if abs(value) >= scale and value % scale == 0:
                return f"{value // scale}{suffix}"
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def default_text(action: argparse.Action) -> str:
    """'(default: X)' for an option with a value default its help does not mention, else ''."""
    default = action.default
    if default is None or default is argparse.SUPPRESS or isinstance(default, bool) or action.required:
        return ""
    if "default" in (action.help or "").lower():
        return ""
    if not action.option_strings and action.nargs not in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
        return ""
    return f"(default: {shown_default(default)})".replace("%", "%%")


class DefaultsHelp(argparse.HelpFormatter):
    """The help formatter of every `v3sim` parser: each option's line ends with its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        extra = default_text(action)
        return f"{text} {extra}" if extra else text

    def _format_action(self, action: argparse.Action) -> str:
        if not (action.help or "").strip() and default_text(action):
            action = copy.copy(action)  # an option with no help of its own still says its default
            action.help = default_text(action)
        return super()._format_action(action)
