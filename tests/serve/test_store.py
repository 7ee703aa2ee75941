"""The store on SQLite and on a real PostgreSQL server: migrations from an empty database, the job
queue (two worker pools on one database: every job done, none twice; a dead worker's job runs
again), and deleting a patient with every file."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from serve_helpers import wait_for
from sqlalchemy import func, inspect, select, update

from drscreen.serve.app import open_state
from drscreen.serve.config import ServeConfig, ServeState
from drscreen.serve.database import alembic_config
from drscreen.serve.queue import ClaimedJob, WorkerPool, enqueue
from drscreen.serve.store import UploadMeta, accept_upload, delete_images
from drscreen.serve.tables import Base, Image, ImageFile, Job, utc_now

N_JOBS = 40


def state_for(url: str, tmp_path: Path, **settings: object) -> ServeState:
    return open_state(ServeConfig(data_dir=tmp_path / "data", database_url=url, workers=0, **settings))  # type: ignore[arg-type]


def add_images(state: ServeState, count: int) -> list[str]:
    """Queued images with jobs (no files: the stub processors below do not read them)."""
    ids = []
    with state.sessions() as session:
        for index in range(count):
            image_id = str(uuid.uuid4())
            session.add(
                Image(
                    id=image_id,
                    patient_id=f"P{index}",
                    file_name=f"{index}.jpg",
                    content_sha256="0" * 64,
                    status="queued",
                    uploaded_at=utc_now(),
                )
            )
            session.flush()
            enqueue(session, image_id)
            ids.append(image_id)
        session.commit()
    return ids


def mark_done(state: ServeState, job: ClaimedJob) -> None:
    with state.sessions() as session:
        session.execute(update(Job).where(Job.id == job.id).values(status="done", finished_at=utc_now()))
        session.commit()


def test_migrations_build_the_schema_from_an_empty_database(database_url: str, tmp_path: Path) -> None:
    state = state_for(database_url, tmp_path)
    with state.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        head = ScriptDirectory.from_config(alembic_config(state.engine)).get_current_head()
        assert context.get_current_revision() == head
    assert {"users", "web_sessions", "api_tokens", "images", "image_files", "jobs"} <= set(
        inspect(state.engine).get_table_names()
    )
    state_for(database_url, tmp_path)  # migrating again is a no-op
    state.engine.dispose()


def test_two_worker_pools_on_one_database_do_every_job_exactly_once(database_url: str, tmp_path: Path) -> None:
    first, second = state_for(database_url, tmp_path / "a"), state_for(database_url, tmp_path / "b")
    image_ids = add_images(first, N_JOBS)
    runs: Counter[str] = Counter()
    by_pool: Counter[str] = Counter()
    lock = threading.Lock()

    def processor(state: ServeState, pool_name: str):  # type: ignore[no-untyped-def]
        def process(job: ClaimedJob) -> None:
            with lock:
                runs[job.image_id] += 1
                by_pool[pool_name] += 1
            time.sleep(0.01)
            mark_done(state, job)

        return process

    pools = [WorkerPool(first, processor(first, "first"), 2), WorkerPool(second, processor(second, "second"), 2)]
    for pool in pools:
        pool.start()
    try:

        def all_done() -> bool:
            with first.sessions() as session:
                return session.scalar(select(func.count()).where(Job.status == "done")) == N_JOBS

        wait_for(all_done, timeout=60)
    finally:
        for pool in pools:
            pool.stop()
    assert sorted(runs) == sorted(image_ids)
    assert set(runs.values()) == {1}
    assert by_pool["first"] > 0 and by_pool["second"] > 0
    with first.sessions() as session:
        assert set(session.scalars(select(Job.attempts))) == {1}
    for state in (first, second):
        state.engine.dispose()


def test_the_job_of_a_dead_worker_runs_again_and_a_job_that_keeps_dying_fails(
    database_url: str, tmp_path: Path
) -> None:
    state = state_for(database_url, tmp_path, job_lease_seconds=1.0, poll_seconds=0.1, max_attempts=3)
    orphan, hopeless = add_images(state, 2)
    long_ago = utc_now() - timedelta(minutes=5)
    with state.sessions() as session:  # both were running in a process that was killed
        session.execute(
            update(Job)
            .where(Job.image_id == orphan)
            .values(status="running", claimed_by="dead:1", attempts=1, heartbeat_at=long_ago)
        )
        session.execute(
            update(Job)
            .where(Job.image_id == hopeless)
            .values(status="running", claimed_by="dead:1", attempts=3, heartbeat_at=long_ago)
        )
        session.commit()
    processed: list[str] = []

    def process(job: ClaimedJob) -> None:
        processed.append(job.image_id)
        mark_done(state, job)

    pool = WorkerPool(state, process, 1)
    pool.start()
    try:

        def settled() -> bool:
            with state.sessions() as session:
                return set(session.scalars(select(Job.status))) <= {"done", "failed"}

        wait_for(settled, timeout=30)
    finally:
        pool.stop()
    assert processed == [orphan]
    with state.sessions() as session:
        jobs = {job.image_id: job for job in session.scalars(select(Job))}
        assert (jobs[orphan].status, jobs[orphan].attempts) == ("done", 2)
        assert (jobs[hopeless].status, jobs[hopeless].attempts) == ("failed", 4)
        assert session.get(Image, hopeless).status == "failed"  # type: ignore[union-attr]
    state.engine.dispose()


def test_a_running_job_keeps_its_claim_through_heartbeats(database_url: str, tmp_path: Path) -> None:
    state = state_for(database_url, tmp_path, job_lease_seconds=0.8, poll_seconds=0.05)
    add_images(state, 1)
    runs: list[str] = []

    def slow(job: ClaimedJob) -> None:
        runs.append(job.worker)
        time.sleep(2.5)  # three leases long: only the heartbeat keeps the other pool away
        mark_done(state, job)

    pools = [WorkerPool(state, slow, 1), WorkerPool(state, slow, 1)]
    for pool in pools:
        pool.start()
    try:

        def done() -> bool:
            with state.sessions() as session:
                return session.scalar(select(Job.status)) == "done"

        wait_for(done, timeout=30)
    finally:
        for pool in pools:
            pool.stop()
    assert len(runs) == 1
    state.engine.dispose()


def test_deleting_a_patient_removes_images_results_and_files(
    database_url: str, tmp_path: Path, good_photo: Path
) -> None:
    state = state_for(database_url, tmp_path)
    outcomes = {}
    for patient in ("P1", "P1", "P2"):
        with good_photo.open("rb") as stream:
            outcomes.setdefault(patient, []).append(
                accept_upload(state, stream, "photo.jpg", UploadMeta(patient, "R", "2026-01-01", None))
            )
    shared = state.blobs.path(state.blobs.relative_path(hashlib.sha256(good_photo.read_bytes()).hexdigest()))
    assert shared.is_file()
    only_p1 = state.blobs.put_bytes(b"overlay of P1", ".png")
    with state.sessions() as session:
        session.add(ImageFile(image_id=outcomes["P1"][0].image_id, kind="overlay:lesions", path=only_p1))
        session.commit()
    with state.sessions() as session:
        p1 = list(session.scalars(select(Image.id).where(Image.patient_id == "P1")))
    assert delete_images(state, p1) == 2
    with state.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Image).where(Image.patient_id == "P1")) == 0
        assert session.scalar(select(func.count()).select_from(Job).where(Job.image_id.in_(p1))) == 0
        assert session.scalar(select(func.count()).select_from(ImageFile).where(ImageFile.image_id.in_(p1))) == 0
    assert not state.blobs.path(only_p1).exists()
    assert shared.is_file(), "P2 still uses the same photograph"
    with state.sessions() as session:
        p2 = list(session.scalars(select(Image.id).where(Image.patient_id == "P2")))
    delete_images(state, p2)
    assert not shared.exists()
    state.engine.dispose()
