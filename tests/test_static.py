"""Vendored front-end files are exactly the versions recorded in VERSIONS.md."""

import base64
import hashlib
import re
from pathlib import Path

from console.formatting import HTMX_SRI

VENDOR = Path(__file__).resolve().parent.parent / "static" / "vendor"


def recorded():
    table = (VENDOR / "VERSIONS.md").read_text()
    return re.findall(r"^\| `([^`]+)` \|[^|]+\| ([^|]+) \| `([A-Za-z0-9+/=]+)` \|$", table, re.M)


def test_every_vendored_file_matches_its_recorded_hash():
    rows = recorded()
    assert rows, "VERSIONS.md lists no files"
    for path, _version, digest in rows:
        data = (VENDOR / path).read_bytes()
        assert base64.b64encode(hashlib.sha384(data).digest()).decode() == digest, path


def test_htmx_is_2_0_11_and_pages_pin_its_hash():
    rows = {path: (version.strip(), digest) for path, version, digest in recorded()}
    version, digest = rows["htmx/htmx.min.js"]
    assert version == "2.0.11"
    assert HTMX_SRI == f"sha384-{digest}"
    assert 'version:"2.0.11"' in (VENDOR / "htmx/htmx.min.js").read_text()
