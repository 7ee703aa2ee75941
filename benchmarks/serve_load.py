"""Load on ``drscreen serve``: 16 concurrent clients, 1,000 requests (uploads, result fetches,
history pages) against a server on 127.0.0.1 with SQLite and with PostgreSQL; the server is
killed with SIGKILL half-way through and restarted, and every job is then counted.

    python benchmarks/serve_load.py [--databases sqlite postgresql] [--requests 1000] [--clients 16]

Writes benchmarks/results/serve_load.json and .md. Clients retry a request whose connection was
refused while the server restarts (counted as ``retried``); an answer >= 500, or one that is not
the expected status, counts as an error. Screenings per minute: jobs finished over the time from
the first upload to the last finished job (2 screening threads, explanations on, shared 2-core CPU).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "serve"))
from serve_helpers import (  # noqa: E402
    PASSWORD,
    ServerProcess,
    create_database,
    create_user_cli,
    fundus_jpeg,
    postgres_server,
    sign_in,
)

UPLOAD_SHARE, RESULT_SHARE = 0.10, 0.45  # the rest: history pages
RESULTS = Path(__file__).resolve().parent / "results"


class Load:
    """One run: the request mix, the kill -9 and restart, and what was measured."""

    def __init__(self, server: ServerProcess, token: str, photos: list[Path], requests: int, kill_at: int) -> None:
        self.server, self.photos, self.requests, self.kill_at = server, photos, requests, kill_at
        self.headers = {"Authorization": f"Bearer {token}"}
        self.latency: dict[str, list[float]] = {"upload": [], "result": [], "history": []}
        self.errors: list[str] = []
        self.retried = 0
        self.jobs: list[str] = []
        self.images: list[str] = []
        self.lock = threading.Lock()
        self.counter = 0
        self.restart_seconds = 0.0

    def next_index(self) -> int | None:
        with self.lock:
            if self.counter >= self.requests:
                return None
            self.counter += 1
            return self.counter

    def client_loop(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=self.server.url, headers=self.headers, timeout=60) as client:
            while (index := self.next_index()) is not None:
                if index == self.kill_at:
                    self.kill_and_restart()
                self.one_request(client, rng)

    def kill_and_restart(self) -> None:
        started = time.perf_counter()
        self.server.kill()
        self.server.start()
        self.restart_seconds = time.perf_counter() - started

    def one_request(self, client: httpx.Client, rng: random.Random) -> None:
        draw = rng.random()
        with self.lock:
            known = list(self.images)
        request: dict[str, object]
        if draw < UPLOAD_SHARE or not known:
            kind, expected, photo = "upload", 202, rng.choice(self.photos)
            form = {
                "patient_id": f"LOAD-{rng.randrange(200):03d}",
                "laterality": rng.choice("RL"),
                "visit": "2026-11-26",
            }
            files = {"files": (photo.name, photo.read_bytes(), "image/jpeg")}
            request = {"method": "POST", "url": "/api/images", "data": form, "files": files}
        elif draw < UPLOAD_SHARE + RESULT_SHARE:
            kind, expected = "result", 200
            request = {"method": "GET", "url": f"/api/images/{rng.choice(known)}"}
        else:
            kind, expected = "history", 200
            request = {"method": "GET", "url": "/api/images", "params": {"page": rng.randrange(1, 6), "per_page": 25}}
        while True:
            started = time.perf_counter()
            try:
                answer = client.request(**request)  # type: ignore[arg-type]
            except httpx.TransportError:
                with self.lock:
                    self.retried += 1
                time.sleep(0.2)
                continue
            elapsed = time.perf_counter() - started
            break
        with self.lock:
            self.latency[kind].append(elapsed)
            if answer.status_code != expected:
                self.errors.append(f"{kind}: {answer.status_code} {answer.text[:120]}")
            elif kind == "upload":
                outcome = answer.json()["files"][0]
                self.jobs.append(outcome["job_id"])
                self.images.append(outcome["image_id"])

    def drain(self, timeout: float) -> dict[str, object]:
        """Wait for every job; count lost ones (never finished) and the screening rate."""
        deadline = time.monotonic() + timeout
        statuses: dict[str, dict[str, object]] = {}
        with httpx.Client(base_url=self.server.url, headers=self.headers, timeout=60) as client:
            while time.monotonic() < deadline:
                statuses = {job: client.get(f"/api/jobs/{job}").json() for job in self.jobs}
                if all(s.get("status") in ("done", "failed") for s in statuses.values()):
                    break
                time.sleep(2)
        finished = [s for s in statuses.values() if s.get("status") in ("done", "failed")]
        created = min(datetime.fromisoformat(str(s["created_at"])) for s in statuses.values())
        last = max(datetime.fromisoformat(str(s["finished_at"])) for s in finished)
        minutes = (last - created).total_seconds() / 60
        return {
            "jobs_submitted": len(self.jobs),
            "jobs_done": sum(s.get("status") == "done" for s in finished),
            "jobs_failed": sum(s.get("status") == "failed" for s in finished),
            "jobs_lost": len(self.jobs) - len(finished),
            "jobs_rerun_after_kill": sum(int(s.get("attempts", 0)) > 1 for s in finished),
            "screenings_per_minute": round(len(finished) / minutes, 1) if minutes > 0 else None,
        }


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def run(database: str, requests: int, clients: int, stack: ExitStack) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix=f"drscreen-load-{database}-"))
    url = None
    if database == "postgresql":
        port, _root = stack.enter_context(postgres_server())
        url = create_database(port)
    extra = ("--database", url) if url else ()
    create_user_cli(work / "site", "loader", PASSWORD, *extra)
    server = ServerProcess(work / "site", *extra, workers=2).start()
    photos = [fundus_jpeg(work / f"photo_{seed}.jpg", seed=seed, size=768) for seed in range(4)]
    with httpx.Client(base_url=server.url, timeout=60) as client:
        client.headers["X-CSRF-Token"] = sign_in(client, "loader")
        token = client.post("/api/tokens", json={"name": "load"}).json()["token"]
    load = Load(server, token, photos, requests, kill_at=requests // 2)
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(load.client_loop, range(clients)))
    wall = time.perf_counter() - started
    jobs = load.drain(timeout=1800)
    server.stop()
    every = [v for values in load.latency.values() for v in values]
    return {
        "database": database,
        "requests": sum(len(v) for v in load.latency.values()),
        "clients": clients,
        "errors": len(load.errors),
        "error_samples": load.errors[:5],
        "retried_during_restart": load.retried,
        "restart_seconds": round(load.restart_seconds, 1),
        "wall_seconds": round(wall, 1),
        "latency_ms": {
            kind: {"n": len(v), "p50": round(percentile(v, 50) * 1000, 1), "p95": round(percentile(v, 95) * 1000, 1)}
            for kind, v in {**load.latency, "all": every}.items()
            if v
        },
        **jobs,
    }


def markdown(rows: list[dict[str, object]], command: str) -> str:
    lines = [
        f"`{command}`",
        "",
        "| database | requests | errors | p50 ms (all) | p95 ms (all) | p95 upload | p95 result | "
        "p95 history | screenings/min | jobs | lost | rerun after kill | restart s | retried |",
        "|" + "---|" * 14,
    ]
    for r in rows:
        lat = r["latency_ms"]  # type: ignore[index]
        lines.append(
            f"| {r['database']} | {r['requests']} | {r['errors']} | {lat['all']['p50']} | {lat['all']['p95']} | "
            f"{lat['upload']['p95']} | {lat['result']['p95']} | {lat['history']['p95']} | "
            f"{r['screenings_per_minute']} | {r['jobs_submitted']} | {r['jobs_lost']} | "
            f"{r['jobs_rerun_after_kill']} | {r['restart_seconds']} | {r['retried_during_restart']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    rows = []
    with ExitStack() as stack:
        for database in args.databases:
            rows.append(run(database, args.requests, args.clients, stack))
            print(json.dumps(rows[-1], indent=1), flush=True)
    RESULTS.mkdir(exist_ok=True)
    command = "python benchmarks/serve_load.py " + " ".join(sys.argv[1:])
    (RESULTS / "serve_load.json").write_text(json.dumps({"command": command.strip(), "runs": rows}, indent=1))
    (RESULTS / "serve_load.md").write_text(markdown(rows, command.strip()))


if __name__ == "__main__":
    main()
