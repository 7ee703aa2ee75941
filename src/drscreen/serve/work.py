"""One screening job: the image's file through a ``Screener``, its result and layers stored.

Each worker thread owns its own ``Screener`` (explanations hook the model, so threads must not
share one). The preview and overlay layers come from ``drscreen.report.overlays`` and are stored
under content-addressed names; the stored ``ImageResult`` is the CLI's, with ``source`` set to
the uploaded file's name and ``overlays`` pointing at the API's overlay URLs.
"""

from __future__ import annotations

import io
import threading
from typing import Any

from sqlalchemy import select, update

from drscreen.serve.config import ServeState
from drscreen.serve.queue import ClaimedJob, finish, still_mine
from drscreen.serve.store import remove_unreferenced
from drscreen.serve.tables import Image, ImageFile, utc_now


def default_screener(runtime: str = "torch", amp: str = "fp32") -> Any:
    """The shipped models with the default explanation, on ``runtime`` in ``amp`` (``Screener``)."""
    from drscreen.screening import Screener

    return Screener(explain=True, runtime=runtime, amp=amp)


def encode(image: Any, kind: str) -> bytes:
    """JPEG (``"jpeg"``) or PNG (``"png"``) bytes of an RGB(A) uint8 array."""
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    if kind == "jpeg":
        PILImage.fromarray(image).convert("RGB").save(buffer, "JPEG", quality=90)
    else:
        PILImage.fromarray(image).save(buffer, "PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


class ScreeningWork:
    """The job processor the worker pool calls."""

    def __init__(self, state: ServeState) -> None:
        self.state = state
        config = state.config
        self.factory = config.screener_factory or (lambda: default_screener(config.runtime, config.amp))
        self._local = threading.local()

    def screener(self) -> Any:
        if getattr(self._local, "screener", None) is None:
            self._local.screener = self.factory()
        return self._local.screener

    def __call__(self, job: ClaimedJob) -> None:
        from drscreen.screening import ScreeningFailure, ScreeningInput

        state = self.state
        with state.sessions() as session:
            image = session.get(Image, job.image_id)
            upload = session.scalar(
                select(ImageFile.path).where(ImageFile.image_id == job.image_id, ImageFile.kind == "upload")
            )
            if image is None or upload is None:  # deleted while queued
                if still_mine(session, job):
                    finish(session, job, "done", "image deleted before screening")
                session.commit()
                return
        item = ScreeningInput(
            id=image.id,
            path=state.blobs.path(upload),
            patient_id=image.patient_id,
            laterality=image.laterality,  # type: ignore[arg-type]
            laterality_source="manifest" if image.laterality else None,
            visit=image.visit,
        )
        screener = self.screener()
        outcome = screener.screen_one(item)
        if isinstance(outcome, ScreeningFailure):
            self._store_failure(job, outcome.code, outcome.message)
            return
        self._store_result(job, image, outcome, screener.lesion_threshold)

    def _store_failure(self, job: ClaimedJob, code: str, message: str) -> None:
        with self.state.sessions() as session:
            if still_mine(session, job):
                finish(session, job, "done")
                session.execute(
                    update(Image)
                    .where(Image.id == job.image_id)
                    .values(status="rejected", error_code=code, error_message=message, screened_at=utc_now())
                )
            session.commit()

    def _store_result(self, job: ClaimedJob, image: Image, screened: Any, threshold: float) -> None:
        from drscreen.report.overlays import overlay_layers, preview

        size = self.state.config.overlay_size
        files = {"preview": self.state.blobs.put_bytes(encode(preview(screened, size), "jpeg"), ".jpg")}
        for kind, layer in overlay_layers(screened, threshold, size).items():
            files[f"overlay:{kind}"] = self.state.blobs.put_bytes(encode(layer, "png"), ".png")
        overlays = {
            name.split(":", 1)[1]: f"/api/images/{image.id}/overlays/{name.split(':', 1)[1]}"
            for name in files
            if name.startswith("overlay:")
        }
        result = screened.result.model_copy(update={"overlays": overlays, "source": image.file_name})
        with self.state.sessions() as session:
            kept = still_mine(session, job) and session.get(Image, image.id) is not None
            if kept:
                finish(session, job, "done")
                session.execute(
                    update(Image)
                    .where(Image.id == image.id)
                    .values(
                        status=result.status,
                        screened_at=utc_now(),
                        result_json=result.model_dump_json(),
                        dr_grade=None if result.dr is None else result.dr.grade,
                        dme_grade=None if result.dme is None else result.dme.grade,
                        referable=None if result.referable is None else result.referable.referable,
                        referable_score=None if result.referable is None else result.referable.score,
                        error_code=None,
                        error_message=None,
                    )
                )
                for kind, path in files.items():
                    existing = session.get(ImageFile, (image.id, kind))
                    if existing is None:
                        session.add(ImageFile(image_id=image.id, kind=kind, path=path))
                    else:
                        existing.path = path
            session.commit()
        if not kept:
            remove_unreferenced(self.state, set(files.values()))
