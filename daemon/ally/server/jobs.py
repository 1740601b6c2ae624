"""Jobs: one bounded queue per device, worker threads, cancellation, timeouts, OOM fallback, draining.

A job's work is synchronous (torch) and runs in its device lane's own thread pool; the event loop only
schedules. Cancellation is cooperative: the engine reports progress at every optimisation step, and the
progress callback raises :class:`JobCancelled` once the job is cancelled (by the client, a disconnect, the
timeout or shutdown). The client is answered at once; the thread stops at its next step.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import ErrorCode, ProtocolError
from .limits import RETRY_AFTER_MAX_MS, RETRY_AFTER_MIN_MS, Limits

logger = logging.getLogger(__name__)

QUEUED, RUNNING, DONE = "queued", "running", "done"
# Weight of the newest job in the running average of job durations (for the busy retry hint).
_EWMA_WEIGHT = 0.2

Progress = Callable[[str, float], None]


class JobCancelled(Exception):
    """Raised in the worker thread, from the progress callback, once the job is cancelled."""


@dataclass
class JobOutput:
    result: dict[str, Any]
    binary: bytes | None = None


JobOutcome = JobOutput | ProtocolError
Work = Callable[[Progress], JobOutput]


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's typed OOM, or the RuntimeError MPS (and older CUDA paths) raise."""
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_accelerator_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and torch.backends.mps.is_available():
        mps.empty_cache()


class Job:
    """One unit of work for one request of one connection."""

    def __init__(self, job_id: str, work: Work, *, fallback: Work | None = None, size: int = 0,
                 on_progress: Callable[[str, str, float], None] | None = None, progress_interval_s: float = 0.1):
        self.id = job_id
        self.work: Work | None = work
        self.fallback: Work | None = fallback  # the same work on the CPU, after running out of device memory
        self.size = size  # bytes held while queued
        self.on_progress = on_progress  # (job id, stage, fraction), called on the event loop
        self.state = QUEUED
        self.lane: Lane | None = None
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[JobOutcome] = self.loop.create_future()
        self._cancelled = threading.Event()
        self._interval = progress_interval_s
        self._last_stage: str | None = None
        self._last_sent = 0.0

    @property
    def done(self) -> bool:
        return self.future.done()

    def resolve(self, outcome: JobOutcome) -> None:
        """Answer the job (first answer wins) and drop what it holds."""
        if not self.future.done():
            self.future.set_result(outcome)
        self.state = DONE
        self.work = self.fallback = None

    # -- the worker thread's side ---------------------------------------------------------------------------

    def execute(self) -> JobOutput:
        """Run the work (in a worker thread), once more on the CPU fallback if the device ran out of memory."""
        work, fallback = self.work, self.fallback
        if self._cancelled.is_set() or work is None:
            raise JobCancelled
        try:
            return work(self.progress)
        except Exception as exc:
            if fallback is None or not is_out_of_memory(exc):
                raise
            logger.warning("job %s ran out of device memory; retrying it on the CPU", self.id)
        free_accelerator_memory()
        return fallback(self.progress)

    def progress(self, stage: str, fraction: float) -> None:
        """The engine's progress callback: raises JobCancelled once cancelled; forwards at most every interval."""
        if self._cancelled.is_set():
            raise JobCancelled
        now = time.monotonic()
        if stage == self._last_stage and now - self._last_sent < self._interval and fraction < 1.0:
            return
        self._last_stage, self._last_sent = stage, now
        try:
            self.loop.call_soon_threadsafe(self._forward_progress, stage, min(max(float(fraction), 0.0), 1.0))
        except RuntimeError as e:  # the event loop is closed: nobody is waiting any more
            raise JobCancelled from e

    def _forward_progress(self, stage: str, fraction: float) -> None:
        if not self.done and self.on_progress is not None:
            self.on_progress(self.id, stage, fraction)

    def _signal_cancel(self) -> None:
        self._cancelled.set()


@dataclass
class Stats:
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    busy: int = 0


class Lane:
    """The bounded queue and worker threads of one device."""

    def __init__(self, device: str, workers: int = 1):
        self.device = device
        self.workers = workers
        self.queued: dict[Job, None] = {}  # insertion-ordered set of jobs waiting
        self.running: set[Job] = set()
        self.avg_s: float | None = None  # running average of job durations (None before the first job)
        self._wakeup: asyncio.Queue[Job] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"ally-{device}")
        self.tasks: list[asyncio.Task[None]] = []

    def snapshot(self, capacity: int) -> dict[str, Any]:
        return {"device": self.device, "queued": len(self.queued), "running": len(self.running),
                "capacity": capacity}


@dataclass
class JobManager:
    """All lanes; admission (back-pressure), cancellation and draining."""

    limits: Limits
    devices: tuple[str, ...]
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # set once the engines are warm
    workers: int = 1  # per lane (tests with a fake engine use more)
    lanes: dict[str, Lane] = field(init=False)
    stats: Stats = field(default_factory=Stats)
    pending_bytes: int = 0
    closing: bool = False

    def __post_init__(self) -> None:
        self.lanes = {d: Lane(d, self.workers) for d in dict.fromkeys(self.devices)}

    def start(self) -> None:
        for lane in self.lanes.values():
            lane.tasks = [asyncio.create_task(self._worker(lane), name=f"ally-lane-{lane.device}-{i}")
                          for i in range(lane.workers)]

    # -- admission ------------------------------------------------------------------------------------------

    def submit(self, job: Job, device: str) -> None:
        """Queue ``job`` on ``device``'s lane, or raise BUSY (with a retry hint) / SHUTTING_DOWN."""
        if self.closing:
            raise ProtocolError(ErrorCode.SHUTTING_DOWN)
        lane = self.lanes[device]
        if len(lane.queued) >= self.limits.max_queued_jobs or \
                self.pending_bytes + job.size > self.limits.max_pending_bytes:
            self.stats.busy += 1
            # About when the queue has drained by half: sooner retries would only be refused again.
            drain_ms = (lane.avg_s or 0.0) * 1000 * max(1, len(lane.queued) // 2) / lane.workers
            retry = min(max(round(drain_ms), RETRY_AFTER_MIN_MS), RETRY_AFTER_MAX_MS)
            raise ProtocolError(ErrorCode.BUSY, f"the {device} queue is full ({len(lane.queued)} waiting)",
                                {"retry_after_ms": retry})
        job.lane = lane
        lane.queued[job] = None
        self.pending_bytes += job.size
        lane._wakeup.put_nowait(job)

    def _unqueue(self, job: Job) -> None:
        if job.lane is not None and job in job.lane.queued:
            del job.lane.queued[job]
            self.pending_bytes -= job.size

    def cancel(self, job: Job, code: ErrorCode = ErrorCode.CANCELLED, message: str | None = None) -> bool:
        """Cancel a queued or running job; answered at once. False if it had already finished."""
        if job.done:
            return False
        job._signal_cancel()
        self._unqueue(job)
        job.resolve(ProtocolError(code, message))
        if code in (ErrorCode.CANCELLED, ErrorCode.SHUTTING_DOWN):
            self.stats.cancelled += 1
        else:
            self.stats.failed += 1
        return True

    # -- running --------------------------------------------------------------------------------------------

    async def _worker(self, lane: Lane) -> None:
        await self.ready.wait()
        while True:
            job = await lane._wakeup.get()
            if job.done:  # cancelled while it waited
                continue
            self._unqueue(job)
            lane.running.add(job)
            try:
                await self._run(lane, job)
            finally:
                lane.running.discard(job)

    async def _run(self, lane: Lane, job: Job) -> None:
        loop = asyncio.get_running_loop()
        job.state = RUNNING
        started = loop.time()
        future = loop.run_in_executor(lane.executor, job.execute)
        try:
            finished, _ = await asyncio.wait({future}, timeout=self.limits.job_timeout_s)
            if not finished:
                self.cancel(job, ErrorCode.TIMEOUT, f"the job took more than {self.limits.job_timeout_s:g} s")
                logger.warning("job %s timed out on %s; waiting for its thread to stop", job.id, lane.device)
                await asyncio.wait({future})
        except asyncio.CancelledError:
            self.cancel(job, ErrorCode.SHUTTING_DOWN, "the daemon shut down before the job finished")
            raise
        outcome = self._outcome(job, future)
        del future  # the exception's traceback holds the job's frames (and its image)
        if not job.done:
            if isinstance(outcome, JobOutput):
                self.stats.completed += 1
            else:
                self.stats.failed += 1
        job.resolve(outcome)
        elapsed = loop.time() - started
        lane.avg_s = elapsed if lane.avg_s is None else (1 - _EWMA_WEIGHT) * lane.avg_s + _EWMA_WEIGHT * elapsed

    @staticmethod
    def _outcome(job: Job, future: asyncio.Future[JobOutput]) -> JobOutcome:
        exc = future.exception()
        if exc is None:
            return future.result()
        try:
            if isinstance(exc, JobCancelled):
                return ProtocolError(ErrorCode.CANCELLED)
            if isinstance(exc, ProtocolError):
                return ProtocolError(exc.code, exc.message, exc.data)
            if is_out_of_memory(exc):
                return ProtocolError(ErrorCode.OUT_OF_MEMORY)
            return JobManager._failure(job, exc)
        finally:
            exc.__traceback__ = None  # its frames hold the job's data (the decoded image)

    @staticmethod
    def _failure(job: Job, exc: BaseException) -> ProtocolError:
        # The type and where it was raised, not the message: messages can quote user content.
        where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        at = f" at {Path(where[0].filename).name}:{where[0].lineno} in {where[0].name}" if where else ""
        logger.error("job %s failed: %s%s", job.id, type(exc).__name__, at)
        return ProtocolError(ErrorCode.JOB_FAILED, f"the protection failed ({type(exc).__name__})")

    # -- shutdown -------------------------------------------------------------------------------------------

    async def drain(self, grace_s: float) -> None:
        """Refuse new jobs, cancel waiting ones, give running ones ``grace_s`` to finish, then cancel them."""
        self.closing = True
        for lane in self.lanes.values():
            for job in list(lane.queued):
                self.cancel(job, ErrorCode.SHUTTING_DOWN, "the daemon is shutting down; the job had not started")
        running = [job.future for lane in self.lanes.values() for job in lane.running if not job.done]
        if running:
            await asyncio.wait(running, timeout=grace_s)
        for lane in self.lanes.values():
            for job in list(lane.running):
                self.cancel(job, ErrorCode.SHUTTING_DOWN, "the daemon shut down before the job finished")

    async def stop(self) -> None:
        """Stop the workers; threads still running a cancelled job stop at its next progress step."""
        tasks = [t for lane in self.lanes.values() for t in lane.tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for lane in self.lanes.values():
            lane.executor.shutdown(wait=False, cancel_futures=True)

    def snapshot(self) -> list[dict[str, Any]]:
        return [lane.snapshot(self.limits.max_queued_jobs) for lane in self.lanes.values()]
