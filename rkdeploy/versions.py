"""Rockchip version strings, in every format a board, a binary or the toolkit prints them.

A `ComponentVersion` keeps what was printed (`raw`) next to the release it
names (`release`), because users recognise the former and policy compares the
latter: `2.0.0b0+9bab5682`, `1.4.0_22dcfef4` and `2.3.1-source_code` are
releases 2.0.0b0, 1.4.0 and 2.3.1.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

# Starts only where a digit run starts, so that a long run of digits without a dot is rejected in linear
# time (a 20 000-digit line would otherwise be tried from every one of its digits: quadratic).
_RELEASE = re.compile(r"(?<![0-9])([0-9]+(?:\.[0-9]+)+(?:(?:a|b|rc)[0-9]+)?)")


@dataclass(frozen=True)
class ComponentVersion:
    release: str          # e.g. "2.3.2", "2.0.0b0"
    build: str = ""       # e.g. "429f97ae6b@2025-04-09T09:09:27"
    raw: str = ""         # the text it was read from

    @property
    def version(self) -> Version:
        return Version(self.release)

    def __str__(self) -> str:
        return self.release


def release_of(text: str | None) -> Version | None:
    """The release a version string names, ignoring build suffixes; None if it names none."""
    if not text:
        return None
    m = _RELEASE.search(str(text))
    if not m:
        return None
    try:
        return Version(m.group(1))
    except (InvalidVersion, ValueError):     # ValueError: a number too long for int() (over 4300 digits)
        return None


def same_release(a: str | Version | None, b: str | Version | None) -> bool:
    va = a if isinstance(a, Version) else release_of(a)
    vb = b if isinstance(b, Version) else release_of(b)
    return va is not None and va == vb


def _component(release: str, build: str, raw: str) -> ComponentVersion:
    return ComponentVersion(release=release, build=build.strip(), raw=raw.strip())


# Version strings sit on one line: `[ \t]*`, never `\s*`, so that a label and the next string of a binary
# (`rknn_server: ` then `2.3.2 (…)`, separate strings in the file) are never read as one version string.
_V = r"([0-9][\w.+-]*)"
_BUILD = r"(?:[ \t]*\(([^)\n]*)\))?"
_RUNTIME = re.compile(r"librknnm?rt version:[ \t]*" + _V + _BUILD)
_RUNTIME_SHORT = re.compile(r"rknnrt:[ \t]*" + _V + _BUILD)
_SERVER_NAMED = re.compile(r"rknn_server version:[ \t]*" + _V + _BUILD)
_SERVER_BANNER = re.compile(r"start rknn server, version:[ \t]*" + _V + _BUILD)
_SERVER_LABEL = re.compile(r"rknn_server:[ \t]*" + _V + _BUILD)
# The only version string servers up to 1.5.0 carry: `1.5.0 (17e11b1 build: 2023-05-18 21:43:39)`; 1.5.2 and
# later carry `2.3.2 (1842325 build@…)` too, next to the named form (docs/sdk-releases.md).
_SERVER_BARE = re.compile(r"^[ \t]*([0-9]+\.[0-9]+\.[0-9]+(?:[a-z][a-z0-9]*)?)[ \t]+\(([0-9a-f]+ build[:@][^)\n]*)\)")
_DRIVER = [
    re.compile(r"RKNPU driver:\s*v?(\d[\w.]*)"),
    re.compile(r"Initialized rknpu\s+(\d[\w.]*)"),
    re.compile(r"RKNN Driver Information[:,]\s*version:\s*(\d[\w.]*)"),
    re.compile(r"DRV:\s*(\d+\.\d+\.\d+)\s*$"),
    re.compile(r"^\s*v?(\d+\.\d+\.\d+)\s*$"),
]
_LITE2 = re.compile(r"rknn-toolkit-lite2 version:\s*(\d[\w.+-]*)")


def parse_runtime(text: str) -> ComponentVersion | None:
    """`librknnrt version: 2.3.2 (429f97ae6b@…)`, also inside `RKNN Runtime Information…` log lines
    and as `DRV: rknnrt: 1.5.3b13 (…)` / bare `rknnrt: 1.2.6b0 (…)` in get_sdk_version output."""
    m = _RUNTIME.search(text) or _RUNTIME_SHORT.search(text)
    if not m or not release_of(m.group(1)):
        return None
    return _component(str(release_of(m.group(1))), m.group(2) or "", m.group(0))


def parse_server(text: str) -> ComponentVersion | None:
    """rknn_server's version in its forms: `rknn_server version: X (…)` (1.5.2+ binaries), the bare
    `1.5.0 (17e11b1 build: …)` (the only one in binaries up to 1.5.0), the start banner, and
    get_sdk_version's `rknn_server: X (…)`. The named forms win over the bare one (docs/sdk-releases.md)."""
    for pattern in (_SERVER_NAMED, _SERVER_BANNER, _SERVER_LABEL):
        m = pattern.search(text)
        if m and release_of(m.group(1)):
            return _component(str(release_of(m.group(1))), m.group(2) or "", m.group(0))
    for line in text.splitlines():
        m = _SERVER_BARE.search(line)
        if m:
            return _component(str(release_of(m.group(1))), m.group(2), m.group(0))
    return None


def parse_driver(text: str) -> ComponentVersion | None:
    for line in text.splitlines():
        for pattern in _DRIVER:
            m = pattern.search(line)
            if m and release_of(m.group(1)):
                return _component(str(release_of(m.group(1))), "", line)
    return None


def parse_lite2(text: str) -> ComponentVersion | None:
    """lite2's self-report (`W rknn-toolkit-lite2 version: 2.3.2`) or an importlib.metadata version."""
    m = _LITE2.search(text)
    value = m.group(1) if m else text.strip()
    rel = release_of(value)
    return _component(str(rel), "", text) if rel and value else None


def parse_sdk_version_block(text: str) -> dict[str, ComponentVersion]:
    """get_sdk_version() output (toolkit or RKNNLite): API, server and runtime versions."""
    found: dict[str, ComponentVersion] = {}
    for line in text.splitlines():
        body = re.sub(r"^[A-Z] RKNNAPI:\s*", "", line).strip()
        if body.startswith("API:"):
            rel = release_of(body[4:])
            if rel:
                build = re.search(r"\(([^()]*)\)", body)
                found["api"] = _component(str(rel), build.group(1) if build else "", body)
        elif "rknn_server:" in body:
            server = parse_server(body)
            if server:
                found["server"] = server
        elif "rknnrt:" in body:
            runtime = parse_runtime(body)
            if runtime:
                found["runtime"] = runtime
        elif body.startswith("DRV:"):
            driver = parse_driver(body)
            if driver:
                found["driver"] = driver
    return found
