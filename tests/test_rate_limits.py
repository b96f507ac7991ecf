"""Rate limits kept in Redis are counted across processes, as several workers need.

Production serves with several gunicorn workers, so a limit kept in one
process's memory would let an attacker multiply their attempts by the number
of workers. With ``CONSOLE_REDIS_URL`` set, the counts live in Redis: this test
runs two separate worker processes against the Redis at 127.0.0.1:6379 and
checks the second sees the failures of the first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis

REDIS_URL = os.environ.get("CONSOLE_TEST_REDIS", "redis://127.0.0.1:6379/0")
BIN = Path(sys.executable).parent

# One worker process: sign in with a wrong password N times, print the statuses.
WORKER = """
import json, sys
from console import create_app
app = create_app(json.loads(sys.argv[1]))
client = app.test_client()
form = {"email": sys.argv[2], "password": "not the password"}
print(json.dumps([client.post("/login", data=form).status_code for _ in range(int(sys.argv[3]))]))
"""


@pytest.fixture
def redis_client() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        if os.environ.get("CONSOLE_REQUIRE_REDIS"):
            pytest.fail(f"Redis is required (CONSOLE_REQUIRE_REDIS) but {REDIS_URL}: {error}")
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {error}")
    return client


def test_failed_sign_ins_count_across_worker_processes(tmp_path, redis_client):
    database = f"sqlite:///{tmp_path / 'limits.db'}"
    subprocess.run(
        [str(BIN / "flask"), "--app", "console", "db", "upgrade"],
        env={**os.environ, "CONSOLE_DATABASE_URL": database},
        check=True,
        capture_output=True,
    )
    prefix = f"console-test-{uuid.uuid4().hex}"
    settings = {
        "TESTING": True,
        "WTF_CSRF_ENABLED": False,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "DATABASE_URL": database,
        "REDIS_URL": REDIS_URL,
        "RATELIMIT_KEY_PREFIX": prefix,
        "LOGIN_RATE_LIMIT": "3 per minute",
    }

    def worker(email: str, attempts: int) -> list[int]:
        result = subprocess.run(
            [str(BIN / "python"), "-c", WORKER, json.dumps(settings), email, str(attempts)],
            check=True,
            capture_output=True,
            text=True,
        )
        return json.loads(result.stdout.strip().splitlines()[-1])

    try:
        assert worker("someone@limits.example", 2) == [200, 200]
        # Another process, the same Redis: the third failure is allowed, the fourth refused.
        assert worker("someone@limits.example", 2) == [200, 429]
        # Another address is counted on its own.
        assert worker("other@limits.example", 1) == [200]
        assert redis_client.keys(f"*{prefix}*")
    finally:
        if keys := redis_client.keys(f"*{prefix}*"):
            redis_client.delete(*keys)
