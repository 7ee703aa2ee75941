"""How a screening input becomes a prepared photograph, in the calling process or in worker processes.

``load_photograph`` is the one way: hash the content, read the photograph reduced to the size the
analysis and the default display need (``drscreen.io.draft``: DCT-scaled JPEG decoding, area
averaging for other formats and in-memory images), prepare it (field of view, crop, quality gate)
on the reduced image, and map the crop geometry back to the original photograph; with a
separate lesion model, prepare the same reduced image a second time with its preprocessing. Quality
thresholds and measurements in original pixels (``min_fov_diameter_px``, ``fov_diameter_px``)
are converted by the reduction factor, so the gate judges the photograph, not its reduced copy.

``PhotographLoader`` runs ``load_photograph`` over many inputs in a pool of worker processes with
a bounded number in flight and yields the outcomes in input order, so that decoding and
preprocessing overlap the network; with one input or ``workers=0`` it runs in the caller. With a
``decode_device`` (a GPU), a thread of the calling process decodes the JPEG files in batches on
that device (``drscreen.screening.gpu.decode_inputs``, nvJPEG on CUDA) ahead of the workers, which
then only prepare; every other input is read by the workers as without it. Workers
start from a fork server, so a script that screens with workers needs the usual
``if __name__ == "__main__":`` guard of ``multiprocessing`` (the ``drscreen`` command has it).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from itertools import chain, islice
from multiprocessing import get_context

import numpy as np

from drscreen.io import InputError
from drscreen.io.draft import MIN_LONG_SIDE, ReducedPhotograph, read_reduced, reduce_photograph, reduction_factor
from drscreen.preprocess import CropGeometry, PreparedImage, PreprocessConfig
from drscreen.preprocess.photograph import prepare_reduced
from drscreen.screening.inputs import ScreeningInput

#: Default number of worker processes: ``min(DEFAULT_MAX_WORKERS, os.cpu_count())``.
DEFAULT_MAX_WORKERS = 4
#: Inputs in flight per worker (submitted, not yet consumed): bounds memory when the model is slower.
PREFETCH_PER_WORKER = 4
#: Inputs per batch decoded on the ``decode_device``.
DECODE_BATCH = 32
#: Seconds between a worker's checks that the screening process still exists.
PARENT_CHECK_SECONDS = 1.0


@dataclass(eq=False)
class PreparedView:
    """The photograph prepared for one more network (the lesion segmenter).

    ``prepared``: its input; the geometry maps its crop to ``PreparedPhotograph.image``.
    ``original_geometry``: the same crop in the original photograph's pixels.
    """

    prepared: PreparedImage
    original_geometry: CropGeometry


@dataclass(eq=False)
class PreparedPhotograph:
    """One input read and prepared.

    Attributes:
        image: (h, w, 3) uint8 RGB, the photograph reduced by an integer factor: at least the
            display size asked for (``display_size``), or full resolution.
        prepared: the network input; its geometry maps the crop to ``image``.
        original_geometry: the same crop in the original photograph's pixels.
        original_size: (H, W) of the original photograph, px.
        digest: SHA-256 of the file's bytes (or of the in-memory image).
        seconds: time spent hashing, reading and preparing, s.
        lesion: the lesion model's view of the same reduced read; None without a lesion model and
            for a photograph the quality gate rejected (it is not graded, so no lesion maps).
    """

    image: np.ndarray
    prepared: PreparedImage
    original_geometry: CropGeometry
    original_size: tuple[int, int]
    digest: str
    seconds: float
    lesion: PreparedView | None = None


@dataclass(frozen=True)
class LoadFailure:
    """An input that could not be read: a reason code (``InputErrorCode`` or ``"unreadable"``) and a message."""

    code: str
    message: str


def default_workers() -> int:
    """``min(DEFAULT_MAX_WORKERS, CPU count)``."""
    return min(DEFAULT_MAX_WORKERS, os.cpu_count() or 1)


def load_photograph(
    item: ScreeningInput,
    config: PreprocessConfig,
    digest: Callable[[ScreeningInput], str],
    display_size: int | None = MIN_LONG_SIDE,
    lesion_config: PreprocessConfig | None = None,
    photo: ReducedPhotograph | None = None,
) -> PreparedPhotograph | LoadFailure:
    """Hash, read (reduced) and prepare one input; never raises for a bad input.

    ``display_size``: long side (px) the returned ``image`` must have at least (None: full
    resolution). The analysis never depends on it: a larger display is a second, display-only read.
    ``lesion_config``: also prepare the reduced image for a separate lesion model (``lesion``),
    when the quality gate passed it. ``photo``: the input already read reduced (decoded on a
    GPU), or None to read it here.
    """
    started = time.perf_counter()
    try:
        content = digest(item)
        if photo is None and item.path is not None:
            photo = read_reduced(item.path)
        elif photo is None:
            assert item.image is not None
            photo = reduce_photograph(item.image)
        prepared = prepare_reduced(config, photo)
        lesion = None
        if lesion_config is not None and prepared.usable:
            lesion = prepare_reduced(lesion_config, photo, prepared.fov)
        image, ratio = _display(item, photo, display_size)
    except InputError as error:
        return LoadFailure(error.code, error.reason)
    except (OSError, ValueError) as error:
        return LoadFailure("unreadable", str(error))
    return PreparedPhotograph(
        image=image,
        prepared=_in_display(prepared, ratio, image.shape[:2]),
        original_geometry=prepared.geometry.rescaled(photo.factor, photo.original_size),
        original_size=photo.original_size,
        digest=content,
        seconds=time.perf_counter() - started,
        lesion=None if lesion is None else PreparedView(
            _in_display(lesion, ratio, image.shape[:2]), lesion.geometry.rescaled(photo.factor, photo.original_size)
        ),
    )


def _in_display(prepared: PreparedImage, ratio: int, shape: tuple[int, ...]) -> PreparedImage:
    """``prepared`` with its geometry mapped from the reduced read to the display image ((h, w) ``shape``)."""
    return replace(prepared, geometry=prepared.geometry.rescaled(ratio, shape))


def _display(item: ScreeningInput, photo: ReducedPhotograph, display_size: int | None) -> tuple[np.ndarray, int]:
    """The display image (``photo.image`` when it is large enough) and the factor from ``photo``'s
    pixels to the display image's."""
    height, width = photo.original_size
    if reduction_factor(width, height, display_size, min_short_side=1) >= photo.factor:
        return photo.image, 1
    if item.path is not None:
        larger = read_reduced(item.path, min_long_side=display_size, min_short_side=1)
    else:
        assert item.image is not None
        larger = reduce_photograph(item.image, min_long_side=display_size, min_short_side=1)
    return larger.image, photo.factor // larger.factor


def _init_worker(screening_pid: int) -> None:
    """One thread per worker process (the processes are the parallelism), and a watcher that ends
    the worker when the screening process is gone (killed: nothing else would end it)."""
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    threading.Thread(target=_exit_without, args=(screening_pid,), name="drscreen-parent-watch", daemon=True).start()


def _exit_without(pid: int) -> None:
    """Exit this process as soon as process ``pid`` no longer exists (checked every second)."""
    while True:
        time.sleep(PARENT_CHECK_SECONDS)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # alive, owned by another user
            continue


class PhotographLoader:
    """``load_photograph`` over many inputs, in input order, in ``workers`` processes.

    Args:
        config: the predictor's preprocessing.
        digest: content hash of an input (a module-level function: it is sent to the workers).
        workers: worker processes (0: load in the calling process).
        display_size: see ``load_photograph``.
        lesion_config: the separate lesion model's preprocessing, or None (``load_photograph``).
        prefetch: inputs in flight at most (default ``PREFETCH_PER_WORKER * workers``).
        decode_device: a torch device that decodes the JPEG files (``drscreen.screening.gpu``) in
            batches of ``DECODE_BATCH`` in a thread, one batch ahead; None: the workers read them.
    """

    def __init__(
        self,
        config: PreprocessConfig,
        digest: Callable[[ScreeningInput], str],
        *,
        workers: int = 0,
        display_size: int | None = MIN_LONG_SIDE,
        lesion_config: PreprocessConfig | None = None,
        prefetch: int | None = None,
        decode_device: str | None = None,
    ) -> None:
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        self.config = config
        self.digest = digest
        self.workers = workers
        self.display_size = display_size
        self.lesion_config = lesion_config
        self.prefetch = max(1, prefetch if prefetch is not None else PREFETCH_PER_WORKER * workers)
        self.decode_device = decode_device

    def load(
        self, inputs: Iterable[ScreeningInput]
    ) -> Iterator[tuple[ScreeningInput, PreparedPhotograph | LoadFailure]]:
        """(input, outcome) for every input, in order; workers start only when there are two inputs."""
        stream = self._decoded(iter(inputs))
        head = list(islice(stream, 2))
        if self.workers == 0 or len(head) < 2:
            for item, photo in chain(head, stream):
                yield item, self._load(item, photo)
            return
        yield from self._load_in_workers(chain(head, stream))

    def _load(self, item: ScreeningInput, photo: ReducedPhotograph | None) -> PreparedPhotograph | LoadFailure:
        return load_photograph(item, self.config, self.digest, self.display_size, self.lesion_config, photo)

    def _decoded(
        self, stream: Iterator[ScreeningInput]
    ) -> Iterator[tuple[ScreeningInput, ReducedPhotograph | None]]:
        """(input, its photograph decoded on ``decode_device`` or None) in input order."""
        if self.decode_device is None:
            yield from ((item, None) for item in stream)
            return
        from drscreen.screening.gpu import decode_inputs

        chunks = iter(lambda: list(islice(stream, DECODE_BATCH)), [])
        with ThreadPoolExecutor(1, thread_name_prefix="drscreen-decode") as decoder:
            pending: deque[tuple[list[ScreeningInput], Future[list[ReducedPhotograph | None]]]] = deque()
            for chunk in islice(chunks, 2):
                pending.append((chunk, decoder.submit(decode_inputs, chunk, self.decode_device)))
            while pending:
                chunk, future = pending.popleft()
                photographs = future.result()
                for following in islice(chunks, 1):
                    pending.append((following, decoder.submit(decode_inputs, following, self.decode_device)))
                yield from zip(chunk, photographs, strict=True)

    def _load_in_workers(
        self, stream: Iterator[tuple[ScreeningInput, ReducedPhotograph | None]]
    ) -> Iterator[tuple[ScreeningInput, PreparedPhotograph | LoadFailure]]:
        # Not "fork": this process's OpenCV and OpenMP thread pools hang in a forked copy. A fork
        # server that imported this module once (and ran nothing) starts workers in milliseconds.
        context = get_context("forkserver")
        context.set_forkserver_preload([__name__])
        with ProcessPoolExecutor(
            self.workers, mp_context=context, initializer=_init_worker, initargs=(os.getpid(),)
        ) as pool:
            pending: deque[tuple[ScreeningInput, Future[PreparedPhotograph | LoadFailure]]] = deque()

            def submit(count: int) -> None:
                for item, photo in islice(stream, count):
                    pending.append(
                        (item, pool.submit(
                            load_photograph, item, self.config, self.digest, self.display_size, self.lesion_config,
                            photo,
                        ))  # fmt: skip
                    )

            submit(self.prefetch)
            while pending:
                item, future = pending.popleft()
                outcome = future.result()
                submit(1)
                yield item, outcome
