"""The job queue in the database and the bounded pool of worker threads that drains it.

A job is claimed by exactly one worker: on PostgreSQL (and any server database) with
``SELECT ... FOR UPDATE SKIP LOCKED``, so that several processes or hosts share one queue
without waiting on each other; on SQLite with one atomic ``UPDATE ... WHERE status = 'queued'``
(SQLite runs one writer at a time). A running job carries a heartbeat that its pool refreshes;
when a process dies (``kill -9``, power loss) its jobs' heartbeats stop, and after
``job_lease_seconds`` any worker claims them again, so unfinished jobs run again after a restart.
A job that was started ``max_attempts`` times without finishing is marked failed.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from drscreen.serve.config import ServeState
from drscreen.serve.tables import Image, Job, utc_now

log = logging.getLogger("drscreen.serve")


@dataclass(frozen=True)
class ClaimedJob:
    """A job this worker now owns."""

    id: str
    image_id: str
    attempts: int
    worker: str


def enqueue(session: Session, image_id: str) -> Job:
    """Add a queued job for ``image_id`` to ``session`` (the caller commits)."""
    job = Job(id=str(uuid.uuid4()), image_id=image_id, status="queued", attempts=0, created_at=utc_now())
    session.add(job)
    return job


def _claimable(lease_seconds: float):  # type: ignore[no-untyped-def]
    stale = utc_now() - timedelta(seconds=lease_seconds)
    return or_(Job.status == "queued", and_(Job.status == "running", Job.heartbeat_at < stale))


def claim(state: ServeState, worker: str) -> ClaimedJob | None:
    """Claim the oldest claimable job for ``worker``, or None when there is none."""
    lease = state.config.job_lease_seconds
    with state.sessions() as session:
        if state.engine.dialect.name == "sqlite":
            oldest = select(Job.id).where(_claimable(lease)).order_by(Job.created_at, Job.id).limit(1).scalar_subquery()
            row = session.execute(
                update(Job)
                .where(Job.id == oldest, _claimable(lease))
                .values(status="running", claimed_by=worker, attempts=Job.attempts + 1, heartbeat_at=utc_now())
                .returning(Job.id, Job.image_id, Job.attempts)
            ).first()
            session.commit()
            return None if row is None else ClaimedJob(row.id, row.image_id, row.attempts, worker)
        job = session.scalars(
            select(Job)
            .where(_claimable(lease))
            .order_by(Job.created_at, Job.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if job is None:
            session.rollback()
            return None
        job.status, job.claimed_by, job.attempts, job.heartbeat_at = "running", worker, job.attempts + 1, utc_now()
        claimed = ClaimedJob(job.id, job.image_id, job.attempts, worker)
        session.commit()
        return claimed


def still_mine(session: Session, job: ClaimedJob) -> bool:
    """True when ``job`` is running under its claim; locks the row on server databases."""
    query = select(Job.id).where(Job.id == job.id, Job.status == "running", Job.claimed_by == job.worker)
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    return session.scalar(query) is not None


def finish(session: Session, job: ClaimedJob, status: str, error: str | None = None) -> None:
    """Mark ``job`` done or failed in ``session`` (the caller commits)."""
    session.execute(update(Job).where(Job.id == job.id).values(status=status, finished_at=utc_now(), error=error))


def give_up(state: ServeState, job: ClaimedJob, reason: str) -> None:
    """Fail ``job`` and its image (a job that keeps killing its worker, or an unexpected error)."""
    with state.sessions() as session:
        if still_mine(session, job):
            finish(session, job, "failed", reason)
            session.execute(
                update(Image)
                .where(Image.id == job.image_id)
                .values(status="failed", error_code="server_error", error_message=reason)
            )
        session.commit()


class WorkerPool:
    """``size`` threads that claim jobs and run ``process`` on each, plus one heartbeat thread."""

    def __init__(self, state: ServeState, process: Callable[[ClaimedJob], None], size: int) -> None:
        self.state = state
        self.process = process
        self.size = size
        self.name = f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for index in range(self.size):
            thread = threading.Thread(
                target=self._work, args=(f"{self.name}:{index}",), name=f"drscreen-worker-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        if self.size:
            beat = threading.Thread(target=self._heartbeat, name="drscreen-heartbeat", daemon=True)
            beat.start()
            self._threads.append(beat)

    def stop(self, timeout: float = 30.0) -> None:
        """Let running jobs finish (up to ``timeout`` seconds), then return."""
        self.stopping.set()
        self.wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def notify(self) -> None:
        """A job was queued: wake an idle worker now instead of at its next poll."""
        self.wake.set()

    def _work(self, worker: str) -> None:
        while not self.stopping.is_set():
            try:
                job = claim(self.state, worker)
            except Exception:  # the database is down or busy: log, wait, try again
                log.exception("claiming a job failed")
                self.stopping.wait(self.state.config.poll_seconds * 4)
                continue
            if job is None:
                self.wake.wait(self.state.config.poll_seconds)
                self.wake.clear()
                continue
            self._run(job)

    def _run(self, job: ClaimedJob) -> None:
        with self._lock:
            self._running.add(job.id)
        try:
            if job.attempts > self.state.config.max_attempts:
                give_up(self.state, job, f"screening was started {job.attempts - 1} times and never finished")
            else:
                self.process(job)
        except Exception as error:  # one bad job must not stop the worker
            log.exception("job %s failed", job.id)
            give_up(self.state, job, f"server error while screening: {type(error).__name__}")
        finally:
            with self._lock:
                self._running.discard(job.id)

    def _heartbeat(self) -> None:
        interval = max(0.2, self.state.config.job_lease_seconds / 4)
        while not self.stopping.wait(interval):
            with self._lock:
                running = list(self._running)
            if not running:
                continue
            try:
                with self.state.sessions() as session:
                    session.execute(
                        update(Job)
                        .where(Job.id.in_(running), Job.status == "running", Job.claimed_by.like(f"{self.name}:%"))
                        .values(heartbeat_at=utc_now())
                    )
                    session.commit()
            except Exception:
                log.exception("heartbeat failed")
