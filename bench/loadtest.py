"""/health vs /health/ready under load: a real uvicorn server, httpx clients, latency percentiles.

Also checks the two things readiness must not do per request: open a new database connection
(PostgreSQL counts sessions in pg_stat_database) and read the version files (the server's rchar).
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dbservers
import httpx


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def hammer(client: httpx.AsyncClient, path: str, requests: int, concurrency: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    remaining = [requests]
    bad: list[int] = []

    async def worker() -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            start = time.perf_counter()
            response = await client.get(path)
            latencies.append(time.perf_counter() - start)
            if response.status_code != 200:
                bad.append(response.status_code)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    if bad:
        raise RuntimeError(f"{path} answered {len(bad)} non-200 responses (first {bad[0]})")
    return latencies, wall


def pg_sessions(url: str) -> int | None:
    if not url.startswith("postgresql"):
        return None
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        value = conn.execute(text("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")).scalar()
    engine.dispose()
    return int(value) - 1  # this very session


def rchar(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


async def run_load(tree: Path, env: dict[str, str], db: Any, requests: int, concurrency: int,
                   rounds: int) -> dict[str, Any]:
    port = dbservers.find_free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "project.app.asgi:app", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log", "--log-level", "warning"],
        cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"uvicorn did not start: {server.stderr.read().decode()[-1500:]}")
                await asyncio.sleep(0.2)
            for path in ("/health", "/health/ready"):  # warm-up: pool filled, code paths hot
                await hammer(client, path, min(requests, 200), concurrency)
            await asyncio.sleep(1.5)  # PostgreSQL flushes session statistics lazily
            sessions_before = pg_sessions(db.url)
            results: dict[str, dict[str, list[float]]] = {p: {"p50": [], "p99": [], "rps": []}
                                                          for p in ("/health", "/health/ready")}
            ready_reads = 0
            for _ in range(rounds):
                for path in results:
                    before = rchar(server.pid)
                    latencies, wall = await hammer(client, path, requests, concurrency)
                    if path == "/health/ready":
                        ready_reads += rchar(server.pid) - before
                    results[path]["p50"].append(percentile(latencies, 50) * 1000)
                    results[path]["p99"].append(percentile(latencies, 99) * 1000)
                    results[path]["rps"].append(requests / wall)
            await asyncio.sleep(1.5)
            sessions_after = pg_sessions(db.url)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    rows = {path: {k: statistics.median(v) for k, v in r.items()} for path, r in results.items()}
    ready_requests = requests * rounds
    return {
        "requests": requests, "concurrency": concurrency, "rounds": rounds, "rows_ms": rows,
        "ratios": {t: rows["/health/ready"][t] / rows["/health"][t] for t in ("p50", "p99")},
        # The session that read `sessions_before` is itself counted by `sessions_after`.
        "new_sessions_per_request": (None if sessions_before is None or sessions_after is None
                                     else (sessions_after - sessions_before - 1) / ready_requests),
        "read_bytes_per_request": ready_reads / ready_requests,
    }


async def crud_load(cwd: Path, env: dict[str, str], requests: int, concurrency: int) -> dict[str, Any]:
    """The API's CRUD round trip under `concurrency` clients: each client creates a user, reads it, renames
    it, lists a page, creates and reads a post, then deletes the user (six requests per cycle, about
    `requests` in all). Latency percentiles (ms) over every request, and requests per second."""
    port = dbservers.find_free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "project.app.asgi:app", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log", "--log-level", "warning"],
        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    failure: BaseException | None = None
    latencies: list[float] = []
    bad: list[str] = []

    async def timed(client: httpx.AsyncClient, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        start = time.perf_counter()
        response = await client.request(method, path, **kwargs)
        latencies.append(time.perf_counter() - start)
        if response.status_code != expect:
            bad.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
        return response

    async def cycle(client: httpx.AsyncClient, n: int) -> None:
        user = await timed(client, "POST", "/users", 201, json={"email": f"u{n}@example.com", "name": "U"})
        uid = user.json()["id"]
        await timed(client, "GET", f"/users/{uid}", 200)
        await timed(client, "PATCH", f"/users/{uid}", 200, json={"name": f"User {n}"})
        await timed(client, "GET", "/users", 200, params={"limit": 20})
        post = await timed(client, "POST", "/posts", 201, json={"user_id": uid, "title": "t", "content": "c"})
        await timed(client, "GET", f"/posts/{post.json()['id']}", 200)
        await timed(client, "DELETE", f"/users/{uid}", 204)

    try:
        base = f"http://127.0.0.1:{port}"
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if (await client.get("/health/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"uvicorn did not start: {server.stderr.read().decode()[-1500:]}")
                await asyncio.sleep(0.2)
            counter = iter(range(10**9))
            cycles = max(1, requests // 7)

            async def worker(budget: int) -> None:
                for _ in range(budget):
                    await cycle(client, next(counter))

            await asyncio.gather(*(worker(1) for _ in range(concurrency)))  # warm-up: pool filled, code hot
            latencies.clear()
            start = time.perf_counter()
            await asyncio.gather(*(worker(max(1, cycles // concurrency)) for _ in range(concurrency)))
            wall = time.perf_counter() - start
    except Exception as exc:  # the server's own account says why (a crash, a 500's traceback)
        failure = exc
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    if failure is not None:
        log = server.stderr.read().decode(errors="replace") if server.stderr else ""
        raise RuntimeError(f"{failure!r}; server log: {log[-1500:]}") from failure
    if bad:
        raise RuntimeError(f"{len(bad)} unexpected responses, first: {bad[0]}")
    return {"requests": len(latencies), "concurrency": concurrency, "p50": percentile(latencies, 50) * 1000,
            "p99": percentile(latencies, 99) * 1000, "rps": len(latencies) / wall}
