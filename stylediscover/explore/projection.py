"""Uploaded images projected into W+ in the background (edit.project on one worker thread), with progress.

An upload is projected once per distinct generator among the exports shown when it arrived, each with its
export's feature network (as `edit IMAGE` does). The worker uses private copies of the generators, because a
projection swaps the generator's noise buffers while it runs and renders must not see them.
"""

import copy
import tempfile
import threading
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

from stylediscover.edit import ProjectionConfig, latent_bytes, load_image, project
from stylediscover.errors import InputError, StylediscoverError, summary
from stylediscover.explore.engine import LoadedExport
from stylediscover.features import load_features

MAX_WAITING = 4
MAX_KEPT = 32
MAX_HELD_BYTES = 64 << 20  # uploaded files waiting to be projected, together


class Cancelled(Exception):
    """Raised inside a projection when the server shuts down."""


@dataclass
class Job:
    """One projection of an upload for one generator; `state` is queued | running | done | failed | cancelled."""

    name: str
    steps: int
    state: str = "queued"
    step: int = 0
    error: str = ""
    notes: list[str] = field(default_factory=list)
    ws: torch.Tensor | None = None
    noise: list[torch.Tensor] = field(default_factory=list)
    latent: bytes = b""

    @property
    def waiting(self) -> bool:
        return self.state in ("queued", "running")


class Projector:
    """Queues projections (at most MAX_WAITING unfinished, their uploaded files at most MAX_HELD_BYTES together) and
    reports their progress by upload id; an uploaded file is deleted once its last projection ends; keeps the
    results of the latest MAX_KEPT uploads."""

    def __init__(self):
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="projection")
        self._stop = threading.Event()
        self._folder = tempfile.TemporaryDirectory(prefix="stylediscover-uploads-")
        self._generators: dict[str, torch.nn.Module] = {}
        self._features: dict[str, torch.nn.Module] = {}
        self.uploads: dict[str, dict[str, Job]] = {}
        self._lock = threading.Lock()
        self._files: dict[Path, int] = {}  # uploaded file → projections still to end
        self.held_bytes = 0

    def submit(self, name: str, data: bytes, exports: list[LoadedExport], steps: int) -> str:
        """Starts projecting an image (its file's bytes, already checked to be an image) for the generators of
        `exports`; returns the upload's id."""
        waiting = sum(job.waiting for jobs in self.uploads.values() for job in jobs.values())
        if waiting >= MAX_WAITING:
            raise InputError(name, f"{waiting} projections are already waiting; try again when one has finished")
        if self.held_bytes + len(data) > MAX_HELD_BYTES:
            raise InputError(name, f"uploads waiting to be projected take {self.held_bytes} bytes; with this one "
                             f"they would pass {MAX_HELD_BYTES}: try again when one has finished")
        upload = uuid.uuid4().hex
        image = Path(self._folder.name) / f"{upload}{Path(name).suffix[:8]}"
        jobs: dict[str, Job] = {}
        for export in exports:
            jobs.setdefault(export.generator.key, Job(name, steps))
        image.write_bytes(data)
        with self._lock:
            self._files[image] = len(jobs)
            self.held_bytes += len(data)
        done = set()
        for export in exports:
            if export.generator.key not in done:
                done.add(export.generator.key)
                self._pool.submit(self._run, jobs[export.generator.key], image, export)
        self.uploads[upload] = jobs
        finished = [u for u, js in self.uploads.items() if not any(j.waiting for j in js.values())]
        for old in finished[:max(0, len(self.uploads) - MAX_KEPT)]:
            del self.uploads[old]
        return upload

    def job(self, upload: str, generator_key: str) -> Job:
        """The finished projection of `upload` for a generator; InputError while it is not usable."""
        jobs = self.uploads.get(upload)
        if jobs is None:
            raise InputError("upload", "unknown image; upload it again")
        job = jobs.get(generator_key)
        if job is None:
            raise InputError(jobs[next(iter(jobs))].name, "was projected for another generator; upload it again "
                             "while this export is shown")
        if job.state != "done":
            raise InputError(job.name, job.error or f"not projected yet ({job.state}, step {job.step}/{job.steps})")
        return job

    def status(self, upload: str) -> dict:
        """{state, step, steps, error, notes} over the upload's projections (failed if any failed)."""
        jobs = list(self.uploads.get(upload, {}).values())
        if not jobs:
            raise InputError("upload", "unknown image; upload it again")
        states = {job.state for job in jobs}
        state = next((s for s in ("failed", "cancelled", "running", "queued") if s in states), "done")
        return {"state": state, "step": sum(j.step for j in jobs), "steps": sum(j.steps for j in jobs),
                "error": "; ".join(j.error for j in jobs if j.error),
                "notes": sorted({note for j in jobs for note in j.notes})}

    def _run(self, job: Job, image: Path, export: LoadedExport) -> None:
        def progress(step: int) -> None:
            job.step = step
            if self._stop.is_set():
                raise Cancelled

        try:
            job.state = "running"
            key = export.generator.key
            if key not in self._generators:
                self._generators[key] = copy.deepcopy(export.generator.generator).requires_grad_(False)
            generator = self._generators[key]
            feature_key = export.features.model_dump_json()
            if feature_key not in self._features:
                self._features[feature_key] = load_features(export.features)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                target = load_image(image, generator.resolution)
            job.notes = [str(w.message).replace(str(image), job.name) for w in caught]
            result = project(generator, self._features[feature_key], target, ProjectionConfig(steps=job.steps),
                             progress=False, on_step=progress)
            job.ws, job.noise, job.latent = result["ws"], result["noise"], latent_bytes(result, job.name)
            job.state = "done"
        except Cancelled:
            job.state = "cancelled"
        except StylediscoverError as exc:
            job.state, job.error = "failed", str(exc).replace(str(image), job.name)
        except Exception as exc:  # a projection must never take the server down; the page shows why it failed
            job.state, job.error = "failed", summary(exc)
        finally:
            self._release(image)

    def _release(self, image: Path) -> None:
        """One projection of `image` ended: the file is deleted after its last."""
        with self._lock:
            self._files[image] -= 1
            if self._files[image]:
                return
            del self._files[image]
            self.held_bytes -= image.stat().st_size
            image.unlink()

    def held_files(self) -> list[Path]:
        """Uploaded files still on disk."""
        return sorted(Path(self._folder.name).iterdir())

    def close(self) -> None:
        """Stops the running projection, drops the queued ones and removes the uploaded files."""
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._folder.cleanup()
