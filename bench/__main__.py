"""`make bench`: the console at 100,000 and 10,000 members, measured side by side.

Seeds two SQLite databases (cached under bench/.data/ until the seed, the
rollups or the schema change), serves each with gunicorn (one worker: the
design target is one client on this machine), signs in as the demo owner and
times real HTTP requests, alternating between the two servers so both see the
same machine. Then it times the exports (and how much the worker's memory
grows while it writes them) and event ingest, on copies of the databases.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / ".data"
BIN = Path(sys.executable).parent
OWNER = "owner@demochamber.example"
PASSWORD = "demo-password"
# Seeding builds the rollups too: a change to any of these makes a new database.
SEED_SOURCES = ("services/demo.py", "services/rollups.py", "models/reports.py")
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
    parser.add_argument("--exports", type=int, default=3, help="timed runs of each export")
    parser.add_argument("--batches", type=int, default=20, help="1,000-event batches to ingest")
    args = parser.parse_args()

    targets = [Target("10k", args.small), Target("100k", args.large)]
    databases = {}
    for target in targets:
        databases[target.label] = seed(target.members, args.events, args.fresh)
        target.url, target.process = serve(databases[target.label])
    try:
        for target in targets:
            sign_in(target)
        scenarios = build_scenarios(targets)
        results = {s.name: measure(s, targets, args.requests) for s in scenarios}
        exported = {t.label: measure_exports(t, args.exports) for t in targets}
    finally:
        stop(targets)
    ingested = {t.label: measure_ingest(databases[t.label], args.batches) for t in targets}
    report(results, targets)
    report_exports(exported, targets)
    report_ingest(ingested, targets)


def stop(targets: list[Target]) -> None:
    for target in targets:
        if target.process:
            target.process.send_signal(signal.SIGTERM)
            target.process.wait(timeout=10)
            target.process = None


def seed(members: int, events: int, fresh: bool) -> Path:
    """Return a seeded database for ``members``, reusing a cached one when still valid."""
    DATA.mkdir(parents=True, exist_ok=True)
    fingerprint = hashlib.sha256()
    for path in sorted((ROOT / "migrations" / "versions").glob("*.py")) + [
        ROOT / "console" / name for name in SEED_SOURCES
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
            requests.get(f"{url}/login", timeout=10)
            return url, process
        except (requests.ConnectionError, requests.Timeout):
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
    reports = "/orgs/demo/reports"
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
        Scenario("reports: dashboard, last 30 days", {t.label: [reports] for t in targets}),
        Scenario(
            "reports: dashboard, year, by program (htmx)",
            {
                t.label: [f"{reports}?preset=year&program={p}" for p in programs[t.label]]
                for t in targets
            },
            {"HX-Request": "true"},
        ),
        Scenario(
            "reports: member report",
            {t.label: [f"{path}/report" for path in details[t.label]] for t in targets},
        ),
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


# -- exports -------------------------------------------------------------------------


def worker_of(target: Target) -> int:
    """Return the pid of the gunicorn worker that serves ``target``."""
    assert target.process is not None
    children = Path(f"/proc/{target.process.pid}/task/{target.process.pid}/children")
    return int(children.read_text().split()[0])


def memory_kib(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise SystemExit(f"no {field_name} for {pid}")


def measure_exports(target: Target, runs: int) -> dict[str, tuple[float, float, int]]:
    """Time each export of every demo member and note the worker's memory growth.

    Growth is the worker's peak resident memory during the export (VmHWM, reset
    through /proc/<pid>/clear_refs first) minus its resident memory before it.
    """
    found = {}
    for name, path in (
        ("participants CSV", "/orgs/demo/participants/export.csv"),
        ("participants XLSX", "/orgs/demo/participants/export.xlsx"),
        ("activity CSV (year)", "/orgs/demo/reports/activity.csv?preset=year"),
    ):
        seconds, growth, size = [], [], 0
        for _ in range(runs if "XLSX" not in name else 1):
            pid = worker_of(target)
            before = memory_kib(pid, "VmRSS")
            Path(f"/proc/{pid}/clear_refs").write_text("5")
            started = time.perf_counter()
            with target.session.get(target.url + path, stream=True) as response:
                if response.status_code != 200:
                    raise SystemExit(f"{path} answered {response.status_code}")
                size = sum(len(chunk) for chunk in response.iter_content(1 << 16))
            seconds.append(time.perf_counter() - started)
            growth.append(memory_kib(pid, "VmHWM") - before)
        found[name] = (statistics.median(seconds), max(growth) / 1024, size)
        print(f"measured {name} for {target.label}", flush=True)
    return found


def report_exports(
    found: dict[str, dict[str, tuple[float, float, int]]], targets: list[Target]
) -> None:
    small, large = (t.label for t in targets)
    print()
    print(f"| export (every member) | {small} | {large} | {large} size | {large} worker growth |")
    print("|---|---:|---:|---:|---:|")
    for name in found[large]:
        a, b = found[small][name], found[large][name]
        print(f"| {name} | {a[0]:.2f} s | {b[0]:.2f} s | {b[2] / 1e6:.1f} MB | {b[1]:.0f} MB |")


# -- ingest --------------------------------------------------------------------------


def measure_ingest(database: Path, batches: int) -> list[float]:
    """Post 1,000-event batches to a copy of ``database``; return each batch's seconds."""
    import sqlite3

    copy = database.with_name(database.stem + "-ingest.db")
    shutil.copyfile(database, copy)
    try:
        env = {**os.environ, "CONSOLE_DATABASE_URL": f"sqlite:///{copy}"}
        created = subprocess.run(
            [
                str(BIN / "flask"),
                "--app",
                "console",
                "token",
                "create",
                "--platform",
                "--scope",
                "events:write",
                "--name",
                "bench",
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        secret = created.stdout.strip().splitlines()[-1]
        connection = sqlite3.connect(copy)
        members = [
            str(uuid.UUID(hex=row[0]))
            for row in connection.execute(
                "SELECT m.participant_id FROM members m JOIN orgs o ON o.id = m.org_id"
                " WHERE o.slug = 'demo' LIMIT 50000"
            )
        ]
        connection.close()
        url, process = serve(copy)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {secret}"
        rng = random.Random(1)
        timings = []
        try:
            for number in range(batches + 2):
                body = {"events": [ingest_event(rng, members, number, n) for n in range(1000)]}
                started = time.perf_counter()
                response = session.post(f"{url}/api/v1/events", json=body)
                elapsed = time.perf_counter() - started
                statuses = {r["status"] for r in response.json()["results"]}
                if response.status_code != 200 or statuses != {"accepted"}:
                    raise SystemExit(f"ingest answered {response.status_code}: {statuses}")
                if number >= 2:  # the first batches warm caches
                    timings.append(elapsed)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
        print(f"measured ingest on {database.name}", flush=True)
        return timings
    finally:
        for leftover in copy.parent.glob(copy.name + "*"):
            leftover.unlink()


INGEST_TYPES = (
    ("signed_in", None),
    ("message_sent", lambda rng: {"count": rng.randint(1, 5)}),
    ("session_logged", lambda rng: {"minutes": rng.choice((30, 45, 60))}),
    (
        "feedback_given",
        lambda rng: {"rating": rng.randint(3, 5), "relationship_id": str(uuid.uuid4())},
    ),
    ("mentor_request_sent", None),
    ("profile_updated", None),
    ("outcome_reported", lambda rng: {"jobs": 1, "revenue": 1200.5, "currency": "USD"}),
)


def ingest_event(rng: random.Random, members: list[str], batch: int, number: int) -> dict:
    """One event of the last two hours, for a random demo member."""
    kind, data = rng.choice(INGEST_TYPES)
    moment = time.time() - rng.uniform(0, 7200)
    event = {
        "id": f"bench-{int(time.time())}-{batch:04d}-{number:04d}",
        "type": kind,
        "participant_id": rng.choice(members),
        "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment)),
    }
    if data:
        event["data"] = data(rng)
    return event


def report_ingest(found: dict[str, list[float]], targets: list[Target]) -> None:
    print()
    print("| ingest, 1,000-event batches | median batch | events/s |")
    print("|---|---:|---:|")
    for target in targets:
        timings = found[target.label]
        rate = 1000 * len(timings) / sum(timings)
        print(f"| {target.label} | {statistics.median(timings) * 1000:.0f} ms | {rate:,.0f} |")


if __name__ == "__main__":
    main()
