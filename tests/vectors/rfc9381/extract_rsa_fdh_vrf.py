#!/usr/bin/env python
"""Extract the RSA-FDH-VRF-SHA256 test vectors from the text of draft-irtf-cfrg-vrf-15.

Usage::

    .venv/bin/python tests/vectors/rfc9381/extract_rsa_fdh_vrf.py \\
        ../shared/vectors/draft-irtf-cfrg-vrf-15.txt > tests/vectors/rfc9381/rsa-fdh-vrf-sha256.json

It reads Appendix A (the three keys, then section A.1, examples 1 to 3: the SHA-256 suite) and
writes every value exactly as printed (hex, page breaks removed). ``tests/gli_core/test_vrf.py``
re-runs it on the draft when ``../shared/vectors`` is present and fails if the JSON differs.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

FIELD = re.compile(r"^\s+(?P<name>p|q|n|e|d|alpha|EM|pi|beta) =\s*(?P<rest>.*)$")
HEX = re.compile(r"^\s+(?P<hex>[0-9a-f]+)$")
KEY = re.compile(r"^\s+(?P<bits>\d+)-bit key:$")
EXAMPLE = re.compile(r"^\s+Example (?P<num>\d+), using the (?P<bits>\d+)-bit key above:$")


def _lines(text: str) -> list[str]:
    """The lines of Appendix A up to Appendix B, without the page footers and headers."""
    start = text.index("\nAppendix A.  Test Vectors for the RSA-FDH-VRF ciphersuites")
    end = text.index("\nA.2.  RSA-FDH-VRF-SHA384")
    keep = []
    for line in text[start:end].splitlines():
        if line.startswith(("Goldberg, et al.", "Internet-Draft")) or line.startswith("\f"):
            continue
        keep.append(line)
    return keep


def extract(text: str) -> dict[str, Any]:
    keys: dict[str, dict[str, str]] = {}
    examples: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    field: str | None = None
    for line in _lines(text):
        if m := KEY.match(line):
            current, field = {}, None
            keys[m["bits"]] = current
            continue
        if m := EXAMPLE.match(line):
            current = {"example": int(m["num"]), "key_bits": int(m["bits"])}
            examples.append(current)
            field = None
            continue
        if current is None:
            continue
        if m := FIELD.match(line):
            field = m["name"]
            rest = m["rest"].strip()
            if field == "alpha":
                current["alpha_comment"] = rest if rest.startswith("(") else rest.split(" ", 1)[1]
                current[field] = "" if rest == "(the empty string)" else rest.split(" ", 1)[0]
                field = None
            else:
                current[field] = rest
            continue
        if field is not None and (m := HEX.match(line)):
            current[field] += m["hex"]
    return {
        "description": "RSA-FDH-VRF-SHA256 (suite_string 0x01) test vectors: RFC 9381 Appendix A.1, examples 1-3, "
        "with the keys of Appendix A. Values in hex, exactly as printed.",
        "source": "draft-irtf-cfrg-vrf-15 (published as RFC 9381), Appendix A, generated with "
        "https://github.com/reyzin/rsa-fdh-vrf; copied from ../shared/vectors/draft-irtf-cfrg-vrf-15.txt by "
        "tests/vectors/rfc9381/extract_rsa_fdh_vrf.py",
        "license": "IETF Trust Legal Provisions (code components under the Revised BSD License)",
        "keys": keys,
        "vectors": examples,
    }


def main() -> None:
    text = Path(sys.argv[1]).read_text(encoding="utf-8")
    sys.stdout.write(json.dumps(extract(text), indent=2) + "\n")


if __name__ == "__main__":
    main()
