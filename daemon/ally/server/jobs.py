"""Jobs: bounded queues (lanes), worker threads, priorities, cancellation, timeouts, OOM fallback, draining.

Each device has an image lane; the text protector's device has two text lanes, one for posts (up to
``limits.LONG_TEXT_CHARS``) and one for long texts, so that a text never waits behind photos and a 50 000-character
text never holds up a post. Lanes run side by side; on one device, a lane of lower priority (images, then long
texts) pauses its running job at the job's next progress step while a lane of higher priority has work, so
that a post gets the CPU at once (at most ``YIELD_MAX_S`` per job, so photos are delayed, never starved).

A job's work is synchronous (torch) and runs in its lane's own thread pool; the event loop only
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
from .limits import JOB_DURATION_PRIOR_S, RETRY_AFTER_MAX_MS, RETRY_AFTER_MIN_MS, Limits

logger = logging.getLogger(__name__)

QUEUED, RUNNING, DONE = "queued", "running", "done"
# Lane kinds, highest priority first.
TEXT, LONG_TEXT, IMAGE = "text", "text-long", "image"
PRIORITY = {TEXT: 2, LONG_TEXT: 1, IMAGE: 0}
# The longest a job pauses in total for lanes of higher priority; past it, it runs beside them.
YIELD_MAX_S = 60.0
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
        self.started: float | None = None  # time.monotonic() when it started running
        self.paused_s = 0.0  # time spent waiting for lanes of higher priority (not counted by the timeout)

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
        lane = self.lane
        if lane is not None and lane.outranked() and self.paused_s < YIELD_MAX_S:
            self.paused_s += lane.wait_turn(self._cancelled, YIELD_MAX_S - self.paused_s)
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
    """The bounded queue and worker threads of one kind of job on one device."""

    def __init__(self, device: str, kind: str = IMAGE, workers: int = 1, timeout_s: float = 600.0,
                 turn: threading.Condition | None = None):
        self.device = device
        self.kind = kind
        self.name = device if kind == IMAGE else f"{device}:{kind}"
        self.priority = PRIORITY[kind]
        self.workers = workers
        self.timeout_s = timeout_s
        self.queued: dict[Job, None] = {}  # insertion-ordered set of jobs waiting
        self.running: set[Job] = set()
        self.avg_s: float | None = None  # running average of job durations (None before the first job)
        self.above: list[Lane] = []  # lanes of higher priority on the same device
        self.active = 0  # queued + running, as the worker threads read it
        self._turn = turn or threading.Condition()
        self._wakeup: asyncio.Queue[Job] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"ally-{self.name}")
        self.tasks: list[asyncio.Task[None]] = []

    def update(self) -> None:
        """On the event loop, after a change of queued/running: wake the lanes below if this one is idle."""
        self.active = len(self.queued) + len(self.running)
        if self.active == 0:
            with self._turn:
                self._turn.notify_all()

    def outranked(self) -> bool:
        return any(lane.active for lane in self.above)

    def wait_turn(self, cancelled: threading.Event, most_s: float) -> float:
        """In a worker thread: wait until no lane above has work (or ``most_s``, or cancellation)."""
        started = time.monotonic()
        with self._turn:
            while self.outranked() and not cancelled.is_set():
                left = most_s - (time.monotonic() - started)
                if left <= 0:
                    break
                self._turn.wait(min(left, 0.25))
        return time.monotonic() - started

    def estimate_s(self, prior_s: float) -> float:
        """A job's expected duration: the running average, at least as long as the longest running job so far."""
        per_job = self.avg_s if self.avg_s is not None else prior_s
        now = time.monotonic()
        return max([per_job, *(now - job.started for job in self.running if job.started is not None)])

    def snapshot(self, capacity: int) -> dict[str, Any]:
        return {"device": self.device, "kind": self.kind, "queued": len(self.queued), "running": len(self.running),
                "capacity": capacity}


@dataclass
class JobManager:
    """All lanes; admission (back-pressure), cancellation and draining."""

    limits: Limits
    devices: tuple[str, ...]  # devices with an image lane
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # set once the engines are warm
    workers: int = 1  # per lane (tests with a fake engine use more)
    text_devices: tuple[str, ...] = ()  # devices with the two text lanes
    lanes: dict[str, Lane] = field(init=False)
    stats: Stats = field(default_factory=Stats)
    pending_bytes: int = 0
    closing: bool = False

    def __post_init__(self) -> None:
        turn = threading.Condition()
        timeouts = {IMAGE: self.limits.job_timeout_s, TEXT: min(self.limits.job_timeout_s,
                                                                 self.limits.text_job_timeout_s),
                    LONG_TEXT: self.limits.job_timeout_s}
        wanted = [(d, IMAGE) for d in dict.fromkeys(self.devices)]
        wanted += [(d, kind) for d in dict.fromkeys(self.text_devices) for kind in (TEXT, LONG_TEXT)]
        lanes = [Lane(d, kind, self.workers, timeouts[kind], turn) for d, kind in wanted]
        for lane in lanes:
            lane.above = [o for o in lanes if o.device == lane.device and o.priority > lane.priority]
        self.lanes = {lane.name: lane for lane in lanes}

    def start(self) -> None:
        for lane in self.lanes.values():
            lane.tasks = [asyncio.create_task(self._worker(lane), name=f"ally-lane-{lane.name}-{i}")
                          for i in range(lane.workers)]

    def lane_for(self, device: str, kind: str) -> Lane:
        name = device if kind == IMAGE else f"{device}:{kind}"
        lane = self.lanes.get(name)
        if lane is None:  # an engine on a device nobody planned a lane for (tests); made on first use
            lane = Lane(device, kind, self.workers, self.limits.job_timeout_s)
            self.lanes[name] = lane
            lane.tasks = [asyncio.create_task(self._worker(lane), name=f"ally-lane-{name}-{i}")
                          for i in range(lane.workers)]
        return lane

    # -- admission ------------------------------------------------------------------------------------------

    def submit(self, job: Job, device: str, kind: str = IMAGE) -> None:
        """Queue ``job`` on the lane of ``kind`` on ``device``, or raise BUSY (with a retry hint) / SHUTTING_DOWN."""
        if self.closing:
            raise ProtocolError(ErrorCode.SHUTTING_DOWN)
        lane = self.lane_for(device, kind)
        if len(lane.queued) >= self.limits.max_queued_jobs or \
                self.pending_bytes + job.size > self.limits.max_pending_bytes:
            self.stats.busy += 1
            raise ProtocolError(ErrorCode.BUSY, f"the {lane.name} queue is full ({len(lane.queued)} waiting)",
                                {"retry_after_ms": self.retry_after_ms(lane)})
        job.lane = lane
        lane.queued[job] = None
        lane.update()
        self.pending_bytes += job.size
        lane._wakeup.put_nowait(job)

    def retry_after_ms(self, lane: Lane) -> int:
        """About when ``lane``'s queue has drained by half: what is left of the running jobs and half of the
        waiting ones, at the lane's average job duration (a prior per kind before the first job finished,
        and never less than the longest-running job's time so far). Sooner retries would only be refused."""
        per_job = lane.estimate_s(JOB_DURATION_PRIOR_S[lane.kind])
        now = time.monotonic()
        running_left = sum(max(per_job - (now - job.started), 0.1 * per_job)
                           for job in lane.running if job.started is not None)
        drain_s = (running_left + per_job * max(1, (len(lane.queued) + 1) // 2)) / lane.workers
        return min(max(round(drain_s * 1000), RETRY_AFTER_MIN_MS), RETRY_AFTER_MAX_MS)

    def _unqueue(self, job: Job) -> None:
        if job.lane is not None and job in job.lane.queued:
            del job.lane.queued[job]
            self.pending_bytes -= job.size
            job.lane.update()

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
            lane.running.add(job)
            self._unqueue(job)
            lane.update()
            try:
                await self._run(lane, job)
            finally:
                lane.running.discard(job)
                lane.update()

    async def _run(self, lane: Lane, job: Job) -> None:
        loop = asyncio.get_running_loop()
        job.state = RUNNING
        started = loop.time()
        job.started = time.monotonic()
        future = loop.run_in_executor(lane.executor, job.execute)
        try:
            while True:  # the timeout counts the job's own time, not its pauses for lanes above it
                left = started + lane.timeout_s + job.paused_s - loop.time()
                finished, _ = await asyncio.wait({future}, timeout=max(left, 0.0))
                if finished or loop.time() - started - job.paused_s >= lane.timeout_s:
                    break
            if not finished:
                self.cancel(job, ErrorCode.TIMEOUT, f"the job took more than {lane.timeout_s:g} s")
                logger.warning("job %s timed out on %s; waiting for its thread to stop", job.id, lane.name)
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
        elapsed = loop.time() - started - job.paused_s
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
