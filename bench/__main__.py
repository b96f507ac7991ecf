"""`make bench`: the console at 100,000 and 10,000 members, measured side by side.

Seeds two SQLite databases (cached under bench/.data/ until the seed or the
schema changes), serves each with gunicorn (one worker: the design target is
one client on this machine), signs in as the demo owner and times real HTTP
requests, alternating between the two servers so both see the same machine.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / ".data"
BIN = Path(sys.executable).parent
OWNER = "owner@demochamber.example"
PASSWORD = "demo-password"
SEARCHES = ("garc", "rodr", "mart", "lopez", "smith", "ana", "jo", "maria garc", "hern", "gonz")


@dataclass
class Target:
    label: str
    members: int
    url: str = ""
    process: subprocess.Popen | None = None
    session: requests.Session = field(default_factory=requests.Session)


@dataclass
class Scenario:
    name: str
    paths: dict[str, list[str]]  # per target label, requests cycle through these
    headers: dict[str, str] = field(default_factory=dict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per scenario")
    parser.add_argument("--fresh", action="store_true", help="seed again even if cached")
    args = parser.parse_args()

    targets = [Target("10k", args.small), Target("100k", args.large)]
    for target in targets:
        database = seed(target.members, args.events, args.fresh)
        target.url, target.process = serve(database)
    try:
        for target in targets:
            sign_in(target)
        scenarios = build_scenarios(targets)
        results = {s.name: measure(s, targets, args.requests) for s in scenarios}
    finally:
        for target in targets:
            if target.process:
                target.process.send_signal(signal.SIGTERM)
                target.process.wait(timeout=10)
    report(results, targets)


def seed(members: int, events: int, fresh: bool) -> Path:
    """Return a seeded database for ``members``, reusing a cached one when still valid."""
    DATA.mkdir(parents=True, exist_ok=True)
    fingerprint = hashlib.sha256()
    for path in sorted((ROOT / "migrations" / "versions").glob("*.py")) + [
        ROOT / "console" / "services" / "demo.py"
    ]:
        fingerprint.update(path.read_bytes())
    key = f"{members}-{events}-{fingerprint.hexdigest()[:12]}"
    database = DATA / f"bench-{key}.db"
    if database.exists() and not fresh:
        print(f"using cached {database.name}", flush=True)
        return database
    for stale in DATA.glob(f"bench-{members}-*"):
        stale.unlink()
    partial = database.with_suffix(".partial")
    for leftover in DATA.glob(partial.name + "*"):
        leftover.unlink()
    env = {**os.environ, "CONSOLE_DATABASE_URL": f"sqlite:///{partial}"}
    flask = [str(BIN / "flask"), "--app", "console"]
    subprocess.run([*flask, "db", "upgrade"], env=env, check=True, capture_output=True)
    started = time.perf_counter()
    result = subprocess.run(
        [
            *flask,
            "demo",
            "seed",
            "--participants",
            str(members),
            "--events-per-participant",
            str(events),
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    print(
        result.stdout.splitlines()[0], f"(wall {time.perf_counter() - started:.0f} s)", flush=True
    )
    # Fold the WAL in so the cached file stands alone.
    import sqlite3

    connection = sqlite3.connect(partial)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    shutil.move(partial, database)
    for leftover in DATA.glob(partial.name + "*"):
        leftover.unlink()
    return database


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(database: Path) -> tuple[str, subprocess.Popen]:
    port = free_port()
    env = {
        **os.environ,
        "CONSOLE_DATABASE_URL": f"sqlite:///{database}",
        "CONSOLE_LOGIN_RATE_LIMIT": "1000 per minute",
    }
    process = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "--workers",
            "1",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(f"{url}/login", timeout=1)
            return url, process
        except requests.ConnectionError:
            time.sleep(0.1)
    raise SystemExit(f"gunicorn did not start for {database}")


def sign_in(target: Target) -> None:
    page = target.session.get(f"{target.url}/login").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = target.session.post(
        f"{target.url}/login",
        data={"csrf_token": token, "email": OWNER, "password": PASSWORD},
        allow_redirects=False,
    )
    if response.status_code != 303:
        raise SystemExit(f"could not sign in to {target.label}: {response.status_code}")


def build_scenarios(targets: list[Target]) -> list[Scenario]:
    base = "/orgs/demo/participants/"
    deep, details, programs = {}, {}, {}
    for target in targets:
        path = base
        for _ in range(50):
            html = target.session.get(target.url + path).text
            path = re.search(r'href="([^"]*cursor=[^"]+)"[^>]*rel="next"', html).group(1)
            path = path.replace("&amp;", "&")
        deep[target.label] = [path]
        first = target.session.get(target.url + base).text
        details[target.label] = re.findall(r'href="(/orgs/demo/participants/[0-9a-f-]{36})"', first)
        programs[target.label] = re.findall(r'<option value="([0-9a-f-]{36})"', first)
    return [
        Scenario("list, first page", {t.label: [base] for t in targets}),
        Scenario("list, 50 pages deep", deep),
        Scenario(
            "search (htmx fragment)",
            {t.label: [f"{base}?q={q}" for q in SEARCHES] for t in targets},
            {"HX-Request": "true"},
        ),
        Scenario(
            "filtered: mentors active 30 days",
            {t.label: [f"{base}?role=mentor&activity=active"] for t in targets},
        ),
        Scenario(
            "filtered: program, recently active",
            {
                t.label: [f"{base}?program={p}&sort=-last_active" for p in programs[t.label]]
                for t in targets
            },
        ),
        Scenario("filtered: suspended", {t.label: [f"{base}?status=suspended"] for t in targets}),
        Scenario("participant detail", details),
    ]


def measure(scenario: Scenario, targets: list[Target], count: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {t.label: [] for t in targets}
    for n in range(count + 20):
        for target in targets:
            paths = scenario.paths[target.label]
            path = paths[n % len(paths)]
            started = time.perf_counter()
            response = target.session.get(target.url + path, headers=scenario.headers)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise SystemExit(f"{scenario.name}: {path} answered {response.status_code}")
            if n >= 20:  # the first requests warm caches
                timings[target.label].append(elapsed)
    print(f"measured {scenario.name}", flush=True)
    return timings


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def report(results: dict[str, dict[str, list[float]]], targets: list[Target]) -> None:
    small, large = (t.label for t in targets)
    print()
    print(f"| request | {small} median | {small} p95 | {large} median | {large} p95 | p95 ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, timings in results.items():
        a, b = timings[small], timings[large]
        print(
            f"| {name} | {statistics.median(a):.1f} ms | {p95(a):.1f} ms | "
            f"{statistics.median(b):.1f} ms | {p95(b):.1f} ms | {p95(b) / p95(a):.2f} |"
        )


if __name__ == "__main__":
    main()
