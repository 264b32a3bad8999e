"""The one way rkdeploy builds a script for a board's shell, and the checks for values that go into one.

A script is a fixed body plus a header of shell variable assignments, each value `shlex.quote`d:

    script('cd "$dir" && rm -f -- "$name"', dir="/opt/m", name="x")  ->  "dir=/opt/m\\nname=x\\ncd ..."

The body is text written here, never formatted with a value: it refers to the values only as "$var". So no
value, whatever it holds, is ever read by the board's shell as code. Values that come from a user or from a
board (a model name, a sha read back from a board's metadata, a readlink target) are also checked against
what they may be before they are used at all, so a hostile one fails that board with a clear message
instead of reaching a command in any form.
"""
from __future__ import annotations

import re
import shlex

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SHA12 = re.compile(r"[0-9a-f]{12}")


class RemoteValueError(ValueError):
    """A value that may not go to a board: says which value, what it was and what it may be."""


def script(body: str, **params: str | int) -> str:
    """`body` with a header assigning each parameter to a shell variable of its name (quoted for sh)."""
    header = []
    for key, value in params.items():
        if not _IDENTIFIER.fullmatch(key):
            raise ValueError(f"not a shell variable name: {key!r}")
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise TypeError(f"shell variable {key}: a str or int, not {type(value).__name__}")
        text = str(value)
        if "\0" in text:
            raise RemoteValueError(f"shell variable {key}: a NUL byte cannot be passed to a shell")
        header.append(f"{key}={shlex.quote(text)}\n")
    return "".join(header) + body


def model_name(value: object, what: str = "model name") -> str:
    """1–64 letters, digits, '.', '_' or '-', starting with a letter or digit (so never '', '.', '..', an
    option or a path). `fullmatch`: a trailing newline is refused too."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise RemoteValueError(f"{what} {value!r}: use 1-64 letters, digits, '.', '_' or '-', starting "
                               "with a letter or digit")
    return value


def sha256(value: object, what: str = "sha256") -> str:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise RemoteValueError(f"{what} {value!r}: not a sha256 (64 lowercase hex digits)")
    return value


def sha12(value: object, what: str = "version") -> str:
    if not isinstance(value, str) or not _SHA12.fullmatch(value):
        raise RemoteValueError(f"{what} {value!r}: not a version id (12 lowercase hex digits)")
    return value


def model_dir(value: object, what: str = "model directory") -> str:
    """An absolute path without '..' components, NUL or newline (spaces and quotes are fine: they are quoted)."""
    if not isinstance(value, str) or not value.startswith("/") or "\0" in value or "\n" in value \
            or "\r" in value or ".." in value.split("/"):
        raise RemoteValueError(f"{what} {value!r}: use an absolute path without '..', newline or NUL")
    return value.rstrip("/") or "/"
