"""Shared machinery of ``g3an data prepare``: decoding, resizing, and the parallel, restartable driver.

Every dataset module turns its raw layout into a list of :class:`VideoItem` (a source file or frame
folder plus its labels) and a :class:`Preprocess` (how frames become ``size x size``); :func:`prepare`
decodes the items in worker processes, writes them with :class:`~g3an.data.format.DatasetWriter` in the
order of their ids, and writes ``prepare_report.json`` (every file skipped and why) into the dataset.

Determinism: an item's frames depend only on the item and the preprocessing options, and items are
written in sorted-id order whatever the number of workers. An interrupted run leaves ``OUT.partial``;
running the same command again continues after the last video written (the writer's journal), so the
result is byte-identical to an uninterrupted run. The source folder is only ever read.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import multiprocessing.connection
import multiprocessing.context
import re
import shutil
import signal
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from g3an.checkpoint import atomic_write
from g3an.data.format import PARTIAL_SUFFIX, DatasetWriter, PreparedDataset
from g3an.machine import worker_context

__all__ = [
    "FRAME_EXTENSIONS",
    "REPORT_FILE",
    "VIDEO_EXTENSIONS",
    "PrepareResult",
    "Preprocess",
    "ScanResult",
    "Skip",
    "SkipError",
    "VideoItem",
    "decode",
    "decode_video",
    "find_sources",
    "is_frame_folder",
    "natural_key",
    "prepare",
    "probe_fps",
    "read_frame_folder",
    "resize_frames",
    "scale_center_crop",
    "short_side_center_crop",
    "unique_ids",
]

#: Containers tried with PyAV (anything FFmpeg demuxes works; these are the names scanned for).
VIDEO_EXTENSIONS = frozenset(
    {".avi", ".mp4", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ogv", ".mts", ".ts"}
)
#: Image files that make a directory a "folder of frames" video.
FRAME_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp"})
#: Files a scan ignores silently (annotations, archives, notes).
IGNORED_EXTENSIONS = frozenset({".txt", ".csv", ".json", ".md", ".xml", ".pdf", ".xls", ".xlsx"})
#: Archives are reported (``not_a_video``, "extract it first"): datasets ship as zip / rar files.
ARCHIVE_EXTENSIONS = frozenset({".zip", ".rar", ".7z", ".tar", ".gz", ".tgz", ".bz2", ".xz"})
#: The skip report written into the prepared dataset directory.
REPORT_FILE = "prepare_report.json"
#: Options of the interrupted run, kept in ``OUT.partial`` so a resume with other options starts afresh.
_OPTIONS_FILE = "prepare_options.json"
#: Face-detector statistics and warnings of the videos stored so far (so a resumed run reports them all).
_NOTES_FILE = "prepare_notes.jsonl"

#: In face mode frames are shrunk while decoding to this long side (or 8 x the output size if larger).
_FACE_MAX_SIDE = 512
#: Skip reasons (the ``reason`` of a :class:`Skip`).
REASONS = {
    "empty": "the file or frame folder is empty",
    "unreadable": "not a video PyAV can open (or not an image), or no video stream",
    "corrupt": "decoding failed part-way",
    "too_short": "fewer frames than --min-frames",
    "no_face": "the face detector found no face in too many frames",
    "unrecognised_name": "the name does not follow the dataset's naming convention",
    "excluded_class": "a class the dataset preparation does not use",
    "not_a_video": "a file that is neither a video nor a frame",
    "crashed": "decoding it killed the worker process (with --workers >= 2)",
}


class SkipError(Exception):
    """A source that cannot be used; ``reason`` is one of :data:`REASONS`, ``detail`` says precisely why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Skip:
    """One source left out of the dataset.

    Attributes:
        path: the source path relative to ``--src``.
        reason: one of :data:`REASONS`.
        detail: what exactly went wrong.
        id: the video id it would have had (``""`` when it never got one).
    """

    path: str
    reason: str
    detail: str
    id: str = ""


@dataclass(frozen=True)
class VideoItem:
    """One video to prepare.

    Attributes:
        id: unique id in the dataset (items are written in sorted-id order).
        path: the video file or frame folder.
        rel: ``path`` relative to the source root (recorded as the video's source).
        label: class index, ``-1`` for none.
        subject: subject / identity.
        split: split name or ``""``.
        factors: further JSON labels.
    """

    id: str
    path: Path
    rel: str
    label: int = -1
    subject: str = ""
    split: str = ""
    factors: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Preprocess:
    """How decoded frames become the dataset's frames.

    Attributes:
        size: output height and width.
        mode: ``"short_side"`` (resize the short side to ``size``, centre crop), ``"scale_crop"`` (resize to
            exactly ``scale_width x size`` whatever the aspect ratio, then centre crop: the paper's UCF101
            and Weizmann 85x64 -> 64x64), ``"stretch"`` (resize to ``size x size``), or ``"face"`` (crop a
            smoothed square box around the detected face, then resize).
        scale_width: width for ``"scale_crop"`` (85 for 64).
        min_frames: shortest video kept (after ``frame_step``).
        frame_step: keep every ``frame_step``-th frame.
        max_frames: keep at most this many frames from the start (0: all).
        flip: also store a horizontally mirrored copy of every video (id suffix ``"_flip"``).
        face_margin: face box side = detected side x this.
        face_window: frames in the running median that smooths the face box.
        face_min_fraction: skip a video whose face is found in fewer than this fraction of the frames it
            is looked for in.
        face_every: run the detector on every ``face_every``-th frame (boxes are interpolated between).
    """

    size: int = 64
    mode: str = "short_side"
    scale_width: int = 0
    min_frames: int = 16
    frame_step: int = 1
    max_frames: int = 0
    flip: bool = False
    face_margin: float = 1.6
    face_window: int = 9
    face_min_fraction: float = 0.5
    face_every: int = 1

    def __post_init__(self) -> None:
        if self.size < 8:
            raise ValueError(f"size must be at least 8, got {self.size}")
        if self.mode not in ("short_side", "scale_crop", "stretch", "face"):
            raise ValueError(f"unknown preprocessing mode {self.mode!r}")
        if self.mode == "scale_crop" and self.scale_width < self.size:
            raise ValueError(f"scale_width {self.scale_width} must be >= size {self.size}")
        if self.min_frames < 1 or self.frame_step < 1 or self.max_frames < 0 or self.face_every < 1:
            raise ValueError("min_frames, frame_step and face_every must be >= 1 and max_frames >= 0")
        if not 0.0 <= self.face_min_fraction <= 1.0 or self.face_margin <= 0 or self.face_window < 1:
            raise ValueError("face_min_fraction must be in [0, 1], face_margin > 0, face_window >= 1")


@dataclass
class ScanResult:
    """What a dataset scanner found in the raw folder.

    Attributes:
        items: videos to prepare (any order; they are sorted by id).
        classes: class names (label ``i`` is ``classes[i]``).
        skipped: sources rejected while scanning (bad names, excluded classes, stray files).
        fps: frame rate stored in the dataset.
        attributes: dataset-level metadata (split source, conventions used, ...).
    """

    items: list[VideoItem]
    classes: list[str]
    skipped: list[Skip] = field(default_factory=list)
    fps: float = 25.0
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class PrepareResult:
    """Outcome of :func:`prepare`.

    Attributes:
        dataset: the opened prepared dataset.
        report_path: the ``prepare_report.json`` written into it.
        written: number of videos stored (flipped copies included).
        skipped: every source left out, with the reason.
        resumed: number of videos already stored by an interrupted earlier run.
        face_stats: per-video detector statistics (face mode only).
        warnings: videos stored with a problem (id -> what: fewer frames than the container declares).
    """

    dataset: PreparedDataset
    report_path: Path
    written: int
    skipped: list[Skip]
    resumed: int
    face_stats: dict[str, dict[str, Any]]
    warnings: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """A short human-readable summary (what the CLI prints)."""
        ds = self.dataset
        splits = ds.splits()
        split_text = "no split" if set(splits) == {""} else ", ".join(f"{k or '(none)'} {n}" for k, n in splits.items())
        lines = [f"prepared {ds.path}: {len(ds)} videos, {ds.total_frames} frames of {ds.height}x{ds.width} at "
                 f"{ds.fps:g} fps, {len(ds.classes)} classes, {split_text}"]  # fmt: skip
        if self.resumed:
            lines.append(f"  continued an interrupted run ({self.resumed} videos were already stored)")
        if self.face_stats:
            failed = sum(s["frames_searched"] - s["frames_found"] for s in self.face_stats.values())
            searched = sum(s["frames_searched"] for s in self.face_stats.values())
            lines.append(f"  face detector: no face in {failed} of {searched} searched frames")
        if self.warnings:
            lines.append(f"  {len(self.warnings)} videos stored with a warning (see the report), e.g. "
                         f"{next(iter(self.warnings))}: {next(iter(self.warnings.values()))}")  # fmt: skip
        if self.skipped:
            counts = Counter(s.reason for s in self.skipped)
            lines.append(f"  skipped {len(self.skipped)}: " + ", ".join(f"{r} {n}" for r, n in sorted(counts.items())))
            for s in self.skipped[:10]:
                lines.append(f"    {s.path}: {s.reason} ({s.detail})")
            if len(self.skipped) > 10:
                lines.append(f"    ... {len(self.skipped) - 10} more")
        lines.append(f"  report: {self.report_path}")
        return "\n".join(lines)


# -- listing -----------------------------------------------------------------------------------------
_NUM = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key that orders ``frame2`` before ``frame10`` (digit runs compare as numbers)."""
    return tuple((0, int(p), p) if p.isdigit() else (1, p.lower(), p) for p in _NUM.split(name) if p)


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def is_frame_folder(path: Path) -> bool:
    """Whether ``path`` is a directory holding image files directly (one video as a folder of frames)."""
    return path.is_dir() and any(p.suffix.lower() in FRAME_EXTENSIONS and p.is_file() for p in path.iterdir())


def find_sources(root: Path, rel_to: Path | None = None) -> tuple[list[Path], list[Skip]]:
    """Video files and frame folders under ``root`` (recursively), naturally sorted, and the stray files.

    A directory holding images is one video; other directories are searched. Files with unknown
    extensions become ``not_a_video`` skips (annotation files such as ``.txt`` are ignored silently).
    """
    rel_to = rel_to or root
    found: list[Path] = []
    stray: list[Skip] = []

    def walk(d: Path) -> None:
        for p in sorted(filter(_visible, d.iterdir()), key=lambda q: natural_key(q.name)):
            if p.is_dir():
                if is_frame_folder(p):
                    found.append(p)
                else:
                    walk(p)
            elif p.suffix.lower() in VIDEO_EXTENSIONS:
                found.append(p)
            elif p.suffix.lower() in ARCHIVE_EXTENSIONS:
                stray.append(Skip(p.relative_to(rel_to).as_posix(), "not_a_video", "an archive: extract it first"))
            elif p.suffix.lower() not in IGNORED_EXTENSIONS and p.suffix.lower() not in FRAME_EXTENSIONS:
                stray.append(Skip(p.relative_to(rel_to).as_posix(), "not_a_video", f"unknown extension {p.suffix!r}"))

    walk(root)
    return found, stray


def unique_ids(paths: Sequence[Path], root: Path) -> list[str]:
    """Ids of ``paths``: the path relative to ``root`` without the extension, kept when two would collide."""
    stems = [p.relative_to(root).with_suffix("").as_posix() if p.is_file() else p.relative_to(root).as_posix()
             for p in paths]  # fmt: skip
    counts = Counter(stems)
    return [s if counts[s] == 1 else p.relative_to(root).as_posix() for s, p in zip(stems, paths)]


# -- decoding ----------------------------------------------------------------------------------------
def _av() -> Any:
    import av

    av.logging.set_level(av.logging.PANIC)  # errors become exceptions; keep FFmpeg's console quiet
    return av


#: A per-frame transform applied while decoding: ``(H, W, 3)`` uint8 -> ``(h, w, 3)`` uint8.
FrameTransform = Callable[[np.ndarray], np.ndarray]


def _stack(frames: list[np.ndarray], what: str) -> np.ndarray:
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise SkipError("corrupt", f"the {what} change size: {sorted(s[:2] for s in shapes)}")
    return np.stack(frames)


def decode_video(path: Path, max_frames: int = 0, step: int = 1,
                 transform: FrameTransform | None = None) -> tuple[np.ndarray, float]:  # fmt: skip
    """The frames of a video file as ``(T, H, W, 3)`` uint8 RGB, and its frame rate.

    Grayscale, paletted, 10-bit and odd-sized streams are converted to 8-bit RGB by FFmpeg. Frames are
    transformed as they are decoded, so a long high-resolution video never sits in memory at full size.

    Args:
        path: the video file.
        max_frames: keep at most this many frames (0: all).
        step: keep every ``step``-th frame, starting with the first.
        transform: applied to every kept frame (e.g. the resize and crop to the output size).

    Raises:
        SkipError: ``empty`` (0 bytes or no frame), ``unreadable`` (not a container PyAV opens, no video
            stream) or ``corrupt`` (a demux/decode error, the message says after how many frames; or
            frames whose size changes when there is no transform to a fixed size).
    """
    av = _av()
    if path.stat().st_size == 0:
        raise SkipError("empty", "the file has 0 bytes")
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as err:
        raise SkipError("unreadable", f"PyAV cannot open it: {err}") from None
    frames: list[np.ndarray] = []
    n = 0
    with container:
        if not container.streams.video:
            raise SkipError("unreadable", "the container has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        try:
            for frame in container.decode(stream):
                n += 1
                if (n - 1) % step:
                    continue
                rgb = frame.to_ndarray(format="rgb24")
                frames.append(transform(rgb) if transform is not None else rgb)
                if max_frames and len(frames) >= max_frames:
                    break
        except (av.FFmpegError, ValueError) as err:
            raise SkipError("corrupt", f"decoding failed after {n} frames: {err}") from None
    if not frames:
        raise SkipError("empty", "the video stream has no decodable frame")
    return _stack(frames, "frames"), fps


def read_frame_folder(path: Path, max_frames: int = 0, step: int = 1,
                      transform: FrameTransform | None = None) -> np.ndarray:  # fmt: skip
    """The images of a frame folder, in natural name order, as ``(T, H, W, 3)`` uint8 RGB.

    Arguments as :func:`decode_video`.

    Raises:
        SkipError: ``empty`` (no image), ``corrupt`` (an unreadable image, naming it, or images of
            different sizes when there is no transform to a fixed size).
    """
    names = sorted((p for p in path.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS and p.is_file()),
                   key=lambda p: natural_key(p.name))[::step]  # fmt: skip
    if max_frames:
        names = names[:max_frames]
    if not names:
        raise SkipError("empty", "the folder holds no image")
    frames: list[np.ndarray] = []
    for p in names:
        try:
            with Image.open(p) as im:
                rgb = np.asarray(im.convert("RGB"))
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            raise SkipError("corrupt", f"image {p.name} is unreadable: {err}") from None
        frames.append(transform(rgb) if transform is not None else rgb)
    return _stack(frames, "images")


def decode(path: Path, max_frames: int = 0, step: int = 1, transform: FrameTransform | None = None) -> np.ndarray:
    """Frames of a video file or a frame folder (see :func:`decode_video`, :func:`read_frame_folder`)."""
    if path.is_dir():
        return read_frame_folder(path, max_frames, step, transform)
    return decode_video(path, max_frames, step, transform)[0]


def declared_frames(path: Path) -> int:
    """Number of frames the container's header declares for the first video stream (0: unknown)."""
    av = _av()
    try:
        with av.open(str(path)) as c:
            return int(c.streams.video[0].frames) if c.streams.video else 0
    except (av.FFmpegError, UnicodeDecodeError, ValueError):
        return 0


def probe_fps(paths: Sequence[Path], default: float = 25.0) -> float:
    """Frame rate declared by the first of ``paths`` that PyAV opens (container metadata, no decoding)."""
    av = _av()
    for p in paths:
        if p.is_dir() or not p.is_file() or p.stat().st_size == 0:
            continue
        try:
            with av.open(str(p)) as c:
                if c.streams.video:
                    s = c.streams.video[0]
                    rate = s.average_rate or s.guessed_rate
                    if rate and 0 < float(rate) < 1000:
                        return round(float(rate), 3)
        except (av.FFmpegError, UnicodeDecodeError, ValueError):
            continue
    return default


# -- geometry ----------------------------------------------------------------------------------------
def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize ``(T, H, W, 3)`` uint8 frames with Pillow's bilinear filter (antialiased when shrinking)."""
    if frames.shape[1:3] == (height, width):
        return np.ascontiguousarray(frames)
    out = np.empty((frames.shape[0], height, width, 3), dtype=np.uint8)
    for i, f in enumerate(frames):
        out[i] = np.asarray(Image.fromarray(f).resize((width, height), Image.Resampling.BILINEAR))
    return out


def _center_crop(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    h, w = frames.shape[1:3]
    top, left = (h - height) // 2, (w - width) // 2
    return np.ascontiguousarray(frames[:, top : top + height, left : left + width])


def short_side_center_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """Resize so the short side is ``size`` (aspect kept, long side rounded), then centre crop ``size x size``."""
    h, w = frames.shape[1:3]
    if h <= w:
        nh, nw = size, max(size, round(w * size / h))
    else:
        nh, nw = max(size, round(h * size / w)), size
    return _center_crop(resize_frames(frames, nh, nw), size, size)


def scale_center_crop(frames: np.ndarray, size: int, scale_width: int) -> np.ndarray:
    """Resize to exactly ``scale_width x size`` (width x height), then centre crop ``size x size``.

    The paper's preprocessing of UCF101 and Weizmann: 85x64, then the central 64x64.
    """
    return _center_crop(resize_frames(frames, size, scale_width), size, size)


# -- one item ----------------------------------------------------------------------------------------
@dataclass
class _Outcome:
    """What a worker returns for one item."""

    index: int
    frames: np.ndarray | None = None
    skip: Skip | None = None
    face: dict[str, Any] | None = None
    warning: str | None = None


def _frame_transform(pre: Preprocess) -> FrameTransform:
    """The per-frame geometry of ``pre``; in face mode a shrink that keeps enough pixels for the crop."""
    if pre.mode == "face":
        limit = max(_FACE_MAX_SIDE, 8 * pre.size)

        def shrink(f: np.ndarray) -> np.ndarray:
            h, w = f.shape[:2]
            if max(h, w) <= limit:
                return f
            k = limit / max(h, w)
            return resize_frames(f[None], max(1, round(h * k)), max(1, round(w * k)))[0]

        return shrink
    if pre.mode == "scale_crop":
        return lambda f: scale_center_crop(f[None], pre.size, pre.scale_width)[0]
    if pre.mode == "stretch":
        return lambda f: resize_frames(f[None], pre.size, pre.size)[0]
    return lambda f: short_side_center_crop(f[None], pre.size)[0]


def _process(index: int, item: VideoItem, pre: Preprocess) -> _Outcome:
    """Decode and preprocess one item (runs in a worker process)."""
    try:
        frames = decode(item.path, pre.max_frames, pre.frame_step, _frame_transform(pre))
        if frames.shape[0] < pre.min_frames:
            raise SkipError("too_short", f"{frames.shape[0]} frames (after --frame-step {pre.frame_step}), "
                                         f"--min-frames is {pre.min_frames}")  # fmt: skip
        face = None
        if pre.mode == "face":
            from g3an.data.prepare.face import face_crop_video

            frames, face = face_crop_video(frames, pre)
        warning = None
        if item.path.is_file() and not pre.max_frames:
            declared = declared_frames(item.path)
            expected = -(-declared // pre.frame_step)
            if frames.shape[0] < expected:
                warning = (f"decoded {frames.shape[0]} of the {expected} frames the container declares "
                           "(truncated or damaged; the decodable frames are kept)")  # fmt: skip
        return _Outcome(index, frames=frames, face=face, warning=warning)
    except SkipError as err:
        return _Outcome(index, skip=Skip(item.rel, err.reason, err.detail, item.id))
    except (OSError, MemoryError) as err:
        return _Outcome(index, skip=Skip(item.rel, "unreadable", f"{type(err).__name__}: {err}", item.id))


def _run(items: Sequence[VideoItem], pre: Preprocess, workers: int) -> Iterator[_Outcome]:
    """Outcomes of ``items`` in their order; ``workers > 1`` processes them in parallel (bounded look-ahead).

    In parallel mode each worker process holds one item at a time, so a worker that dies (a decoder
    crash) names its item, which is skipped as ``crashed``; a new worker takes its place. (Not
    ``concurrent.futures``: on Python 3.11 its pool can deadlock when a worker dies while tasks are being
    queued, CPython gh-125451, and it cannot tell which task killed the worker.)
    """
    if workers <= 1 or len(items) <= 1:
        for i, item in enumerate(items):
            yield _process(i, item, pre)
        return
    ctx = worker_context(["g3an.data.prepare.common", "g3an.data.prepare.face"])
    window = 2 * workers  # outcomes computed ahead of the one to yield next, at most
    idle: list[_Worker] = []
    busy: dict[_Worker, int] = {}
    done: dict[int, _Outcome] = {}
    submitted = yielded = 0
    try:
        while yielded < len(items):
            while submitted < len(items) and submitted - yielded < window and len(busy) < workers:
                worker = idle.pop() if idle else _Worker(ctx)
                worker.send((_process, submitted, items[submitted], pre))
                busy[worker] = submitted
                submitted += 1
            if yielded in done:  # (the workers already have their next items while the caller writes this one)
                yield done.pop(yielded)
                yielded += 1
                continue
            waits = {w.conn: w for w in busy} | {w.process.sentinel: w for w in busy}
            for ready in multiprocessing.connection.wait(list(waits)):
                worker = waits[ready]
                if worker not in busy:  # its connection and its sentinel both fired
                    continue
                index = busy.pop(worker)
                out = worker.receive()
                if out is None:
                    worker.stop()
                    item = items[index]
                    reason = "decoding it killed the worker process"
                    out = _Outcome(index, skip=Skip(item.rel, "crashed", reason, item.id))
                else:
                    idle.append(worker)
                done[index] = out
    finally:  # (busy workers only remain when the caller stopped early: their videos are not wanted)
        for worker in idle:
            worker.stop()
        for worker in busy:
            worker.stop(kill=True)


class _Worker:
    """One worker process and its end of a pipe: it receives ``(function, *args)``, sends the result back."""

    def __init__(self, ctx: multiprocessing.context.BaseContext) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child,), daemon=True)
        self.process.start()
        child.close()

    def send(self, task: tuple) -> None:
        self.conn.send(task)

    def receive(self) -> Any:
        """The result of the task sent, or ``None`` if the process died without one."""
        try:
            return self.conn.recv() if self.conn.poll() or self.process.is_alive() else None
        except (EOFError, ConnectionError):
            return None

    def stop(self, kill: bool = False) -> None:
        """Ask the process to exit (``kill``: kill it at once), wait for it, close the pipe."""
        with suppress(OSError, ValueError):  # already dead or closed
            self.conn.send(None)
        if not kill:
            self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def _worker_main(conn: multiprocessing.connection.Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops the workers
    _worker_init()
    while True:
        try:
            task = conn.recv()
            if task is None:
                return
            fn, *args = task
            conn.send(fn(*args))
        except (EOFError, ConnectionError):  # the parent is gone
            return


def _worker_init() -> None:
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass


# -- driver ------------------------------------------------------------------------------------------
def _items_digest(items: Sequence[VideoItem]) -> str:
    h = hashlib.sha256()
    for it in items:
        h.update(json.dumps([it.id, it.rel, it.label, it.subject, it.split, it.factors], sort_keys=True).encode())
    return h.hexdigest()


def _load_notes(path: Path, writer: DatasetWriter) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Face statistics and warnings of the videos an interrupted run already stored."""
    faces: dict[str, dict[str, Any]] = {}
    warnings: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line: that video is redone
            vid = rec.get("id")
            if isinstance(vid, str) and writer.has(vid):
                if rec.get("face") is not None:
                    faces[vid] = rec["face"]
                if rec.get("warning") is not None:
                    warnings[vid] = rec["warning"]
    return faces, warnings


def _flip_id(video_id: str) -> str:
    return video_id + "_flip"


def prepare(scan: ScanResult, pre: Preprocess, src: Path, out: Path, kind: str, workers: int = 1,
            overwrite: bool = False, progress: bool = True,
            on_video: Callable[[int], None] | None = None) -> PrepareResult:  # fmt: skip
    """Decode, preprocess and store every item of ``scan`` into the prepared dataset ``out``.

    Args:
        scan: the items, classes and scan-time skips of one raw dataset.
        pre: the preprocessing.
        src: the raw folder (recorded as the source; never written).
        out: the dataset directory to create.
        kind: dataset kind (``"ucf101"``, ``"folder"``, ...), recorded in the attributes.
        workers: decoding processes (1: in this process).
        overwrite: replace an existing ``out``.
        progress: show a tqdm progress bar.
        on_video: called with the number of videos written after each one (tests use it to interrupt).

    Returns:
        The result, with the opened dataset and the skip report.

    Raises:
        FileExistsError: ``out`` exists and ``overwrite`` is false.
        ValueError: no video could be prepared.
    """
    src, out = Path(src), Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists (pass --overwrite to replace it)")
    with _exclusive(out):
        return _prepare(scan, pre, src, out, kind, workers, overwrite, progress, on_video)


@contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold a lock beside ``out`` so two runs never write the same ``OUT.partial`` (POSIX only)."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    lock_path = out.with_name(f".{out.name}.prepare-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FileExistsError(f"{out} is being prepared by another process (it holds {lock_path})") from None
        try:
            yield
        finally:
            lock_path.unlink(missing_ok=True)


def _prepare(scan: ScanResult, pre: Preprocess, src: Path, out: Path, kind: str, workers: int, overwrite: bool,
             progress: bool, on_video: Callable[[int], None] | None) -> PrepareResult:  # fmt: skip
    from tqdm import tqdm

    items = sorted(scan.items, key=lambda it: it.id)
    dup = sorted(i for i, n in Counter(it.id for it in items).items() if n > 1)
    if dup:
        raise ValueError(f"duplicate video ids from the scan: {dup[:5]}")
    fps = scan.fps / pre.frame_step
    options = {"kind": kind, "src": str(src.resolve()), "preprocess": asdict(pre), "classes": scan.classes,
               "fps": fps, "items": _items_digest(items)}  # fmt: skip
    partial = out.with_name(out.name + PARTIAL_SUFFIX)
    opt_file = partial / _OPTIONS_FILE
    if partial.exists():
        try:
            same = json.loads(opt_file.read_text(encoding="utf-8")) == options
        except (OSError, json.JSONDecodeError):
            same = False
        if not same:
            shutil.rmtree(partial)  # left by a run with other options (or by another tool): start afresh
    attributes = {"prepared_by": "g3an data prepare", "kind": kind, "preprocess": asdict(pre), **scan.attributes}
    writer = DatasetWriter(out, pre.size, pre.size, fps, source=str(src.resolve()), class_names=scan.classes,
                           attributes=attributes, overwrite=overwrite, resume=True)  # fmt: skip
    resumed = len(writer)
    opt_file.write_text(json.dumps(options, sort_keys=True), encoding="utf-8")
    todo = [it for it in items if not (writer.has(it.id) and (not pre.flip or writer.has(_flip_id(it.id))))]
    skipped: list[Skip] = list(scan.skipped)
    notes_file = partial / _NOTES_FILE
    face_stats, warnings = _load_notes(notes_file, writer)
    bar = tqdm(total=len(items), initial=len(items) - len(todo), unit="video", desc=f"prepare {kind}",
               disable=not progress, file=sys.stderr)  # fmt: skip
    try:
        for outcome in _run(todo, pre, max(1, workers)):
            item = todo[outcome.index]
            if outcome.skip is not None:
                skipped.append(outcome.skip)
            else:
                assert outcome.frames is not None
                if outcome.face is not None:
                    face_stats[item.id] = outcome.face
                if outcome.warning is not None:
                    warnings[item.id] = outcome.warning
                if outcome.face is not None or outcome.warning is not None:
                    with open(notes_file, "a", encoding="utf-8") as f:
                        f.write(json.dumps({"id": item.id, "face": outcome.face, "warning": outcome.warning}) + "\n")
                meta = {"label": item.label, "subject": item.subject, "split": item.split, "source": item.rel}
                if not writer.has(item.id):
                    writer.add_video(outcome.frames, factors=item.factors, id=item.id, **meta)
                if pre.flip:
                    flipped = np.ascontiguousarray(outcome.frames[:, :, ::-1])
                    writer.add_video(flipped, factors={**item.factors, "flipped": True}, id=_flip_id(item.id), **meta)
                if on_video is not None:
                    on_video(len(writer))
            bar.update(1)
    except BaseException:
        bar.close()
        writer.close()  # keep OUT.partial: the same command continues from here
        raise
    bar.close()
    if len(writer) == 0:
        writer.abort()
        reasons = Counter(s.reason for s in skipped)
        raise ValueError(f"no video could be prepared from {src} ({len(items)} found; skipped: {dict(reasons)})")
    opt_file.unlink()
    notes_file.unlink(missing_ok=True)
    dataset = writer.finalize()
    skipped.sort(key=lambda s: (s.path, s.reason))
    report = {
        "kind": kind,
        "src": str(src.resolve()),
        "out": str(out),
        "preprocess": asdict(pre),
        "found": len(items) + sum(1 for s in scan.skipped),
        "written": len(dataset),
        "resumed": resumed,
        "skipped": [asdict(s) for s in skipped],
        "skipped_by_reason": dict(sorted(Counter(s.reason for s in skipped).items())),
        "reasons": REASONS,
        "warnings": [
            {"id": v.id, "source": v.source, "detail": warnings[v.id]} for v in dataset.videos if v.id in warnings
        ],
        "face_detector": face_stats,
        "content_hash": dataset.content_hash,
    }
    report_path = out / REPORT_FILE
    text = json.dumps(report, indent=1, ensure_ascii=False) + "\n"
    atomic_write(report_path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return PrepareResult(dataset, report_path, len(dataset), skipped, resumed, face_stats, warnings)
