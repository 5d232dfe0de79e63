"""The committed dashboard bundle: current, self-contained, small, and served at ``/``.

Python users get the dashboard without Node because the built files are committed in
``src/tickvault/service/static/``. ``npm run build`` in ``web/`` writes ``build-stamp.json`` with a
hash of the sources; the first test recomputes it (same recipe as ``web/scripts/stamp.mjs``) so
an edit to ``web/`` without a rebuild fails here instead of shipping a stale page.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from starlette.testclient import TestClient

import tickvault
from tickvault.service import STATIC_DIR, ServiceSettings, create_app

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "web"
STAMP_ROOTS = ("index.html", "package.json", "package-lock.json", "tsconfig.json", "vite.config.ts", "src")
REBUILD = "rebuild it: cd web && npm ci && npm run build (docs/dashboard.md)"


def source_hash(web: Path) -> str:
    """sha256 over ``"<sha256 of file>  <path>\\n"`` lines, sorted by path, CRLF read as LF."""
    files: list[Path] = []
    for root in STAMP_ROOTS:
        path = web / root
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    lines = []
    for rel in sorted(p.relative_to(web).as_posix() for p in files):
        data = (web / rel).read_bytes().replace(b"\r\n", b"\n")
        lines.append(f"{hashlib.sha256(data).hexdigest()}  {rel}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _assets(html: str) -> list[str]:
    return re.findall(r'<(?:script|link)\b[^>]*?(?:src|href)="([^"]+)"', html)


def test_bundle_is_built_from_the_current_sources() -> None:
    stamp = json.loads((STATIC_DIR / "build-stamp.json").read_text())
    assert stamp["source_sha256"] == source_hash(WEB), f"the committed dashboard bundle is older than web/; {REBUILD}"
    lock = json.loads((WEB / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/lightweight-charts"]["version"]
    assert stamp["built_with"]["lightweight-charts"] == pinned


def test_bundle_is_self_contained_and_small() -> None:
    html = (STATIC_DIR / "index.html").read_text()
    refs = [r for r in _assets(html) if not r.startswith("data:")]
    assert sorted(Path(r).suffix for r in refs) == [".css", ".js"], refs
    for ref in refs:
        # Relative and bundled: no CDN, and the page works under a path prefix too.
        assert ref.startswith("./assets/"), f"{ref} is not a bundled asset; {REBUILD}"
        assert (STATIC_DIR / ref).is_file(), f"{ref} is referenced but missing; {REBUILD}"
    files = [p for p in STATIC_DIR.rglob("*") if p.is_file()]
    names = {p.relative_to(STATIC_DIR).as_posix() for p in files}
    assert names == {"index.html", "build-stamp.json", *(r[2:] for r in refs)}, "stale or stray files in static/"
    assert not any(p.suffix == ".map" for p in files)
    assert sum(p.stat().st_size for p in files) < 600_000  # commit-sized: the chart library is most of it
    script = next(STATIC_DIR / r for r in refs if r.endswith(".js")).read_text()
    # The chart library is inside the bundle (its attribution link is the one URL it carries).
    assert "tradingview.com" in script
    assert "__tickvault" in script
    assert not re.search(r"https?://[^\"'\s]*(cdn|unpkg|jsdelivr|googleapis|gstatic)", script + html)


def test_the_app_serves_the_dashboard_at_the_root() -> None:
    with tickvault.open(":memory:") as vault, TestClient(create_app(vault, ServiceSettings())) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert 'id="chart"' in page.text
        assert 'id="symbol"' in page.text
        for ref in _assets(page.text):
            if ref.startswith("data:"):
                continue
            asset = client.get("/" + ref.removeprefix("./"))
            assert asset.status_code == 200, ref
            kind = "javascript" if ref.endswith(".js") else "css"
            assert kind in asset.headers["content-type"], (ref, asset.headers["content-type"])
        # The API keeps its own answers next to the page (errors in the JSON shape, not HTML).
        missing = client.get("/v1/bars/NOPE/stats", params={"timeframe": "1d"})
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
