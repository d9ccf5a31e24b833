"""The prepared dataset format: every dataset (real or embedded) is decoded once into this layout.

A prepared dataset is a directory::

    DIR/
      meta.json     format name and version, frame size, fps, source, class names, per-video records,
                    dataset-level attributes, the SHA-256 of the frames file and the content hash
      frames.npy    ONE uint8 array (total_frames, H, W, 3), RGB, channels-last; video i is the rows
                    [offset_i, offset_i + num_frames_i). ``np.load(path, mmap_mode="r")`` opens it.

Any clip is read from the memory map without decoding. Writers build the dataset in ``DIR.partial``
and rename it to ``DIR`` only once ``meta.json`` is complete, so an interrupted write never leaves a
directory that :func:`open_dataset` accepts. The format is described for users in ``docs/data.md``.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from g3an.checkpoint import atomic_write

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "DatasetError",
    "DatasetWriter",
    "PreparedDataset",
    "VideoRecord",
    "open_dataset",
]

#: Name written in ``meta.json``; a directory with another name is not one of ours.
FORMAT_NAME = "g3an-prepared-video"
#: Current version. Readers accept every version up to this one; see the version table in docs/data.md.
FORMAT_VERSION = 1

META_FILE = "meta.json"
FRAMES_FILE = "frames.npy"
JOURNAL_FILE = "journal.jsonl"
PARTIAL_SUFFIX = ".partial"

# The .npy header is reserved at a fixed length so it can be rewritten in place once the number of
# frames is known (format 1.0: magic, version, uint16 length, then the dict padded with spaces + "\n").
_NPY_HEADER_LEN = 128
_NPY_MAGIC = b"\x93NUMPY\x01\x00"
_HASH_CHUNK = 1 << 24


class DatasetError(ValueError):
    """A prepared dataset is missing, incomplete, corrupt or of a format this version cannot read."""


@dataclass(frozen=True)
class VideoRecord:
    """One video of a prepared dataset.

    Attributes:
        id: unique name of the video within the dataset (e.g. ``"s003_walk_1"`` or a relative path).
        num_frames: number of frames stored.
        offset: index of its first frame in the frames array.
        label: class index into :attr:`PreparedDataset.classes`, ``-1`` when unlabeled.
        subject: identity of the person / subject (``""`` when unknown); splits are by subject.
        split: split name (``"train"``, ``"test"``, ...; ``""`` when the dataset has no split).
        factors: any further labels (appearance factors, motion nuisances, ...), JSON values.
        source: where the frames came from (original file, or the generator that drew them).
    """

    id: str
    num_frames: int
    offset: int
    label: int = -1
    subject: str = ""
    split: str = ""
    factors: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "num_frames": self.num_frames,
            "offset": self.offset,
            "label": self.label,
            "subject": self.subject,
            "split": self.split,
            "factors": self.factors,
            "source": self.source,
        }


def _npy_header(shape: Sequence[int]) -> bytes:
    body = repr({"descr": "|u1", "fortran_order": False, "shape": tuple(int(s) for s in shape)}).encode("latin1")
    pad = _NPY_HEADER_LEN - len(_NPY_MAGIC) - 2 - len(body) - 1
    if pad < 0:
        raise ValueError(f"frames shape {tuple(shape)} does not fit the reserved .npy header")
    return _NPY_MAGIC + (len(body) + pad + 1).to_bytes(2, "little") + body + b" " * pad + b"\n"


def _read_npy_shape(path: Path) -> tuple[tuple[int, ...], int]:
    """Shape and data offset of a uint8 C-order .npy file, checked without reading the data."""
    with open(path, "rb") as f:
        head = f.read(10)
        if len(head) < 10 or head[:6] != b"\x93NUMPY":
            raise DatasetError(f"{path}: not a .npy file")
        major = head[6]
        if major == 1:
            hlen, start = int.from_bytes(head[8:10], "little"), 10
        else:
            f.seek(0)
            head = f.read(12)
            hlen, start = int.from_bytes(head[8:12], "little"), 12
        f.seek(start)
        try:
            header = ast.literal_eval(f.read(hlen).decode("latin1"))
        except (ValueError, SyntaxError, UnicodeDecodeError) as err:
            raise DatasetError(f"{path}: unreadable .npy header ({err})") from None
    if not isinstance(header, dict) or header.get("descr") != "|u1" or header.get("fortran_order"):
        raise DatasetError(f"{path}: expected a C-order uint8 array, header says {header}")
    return tuple(header["shape"]), start + hlen


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def content_hash(frames_sha256: str, height: int, width: int, fps: float, classes: Sequence[str],
                 videos: Iterable[VideoRecord]) -> str:  # fmt: skip
    """SHA-256 over the frame bytes and the metadata that decides what a model sees.

    Included: format version, frame size, fps, class names and every video's id, frame range, label,
    subject, split and factors. Excluded: source paths, descriptions and dataset attributes, so the
    same data prepared on another machine has the same hash.
    """
    core = {
        "format": f"{FORMAT_NAME}/{FORMAT_VERSION}",
        "frames_sha256": frames_sha256,
        "size": [height, width],
        "fps": fps,
        "classes": list(classes),
        "videos": [[v.id, v.num_frames, v.offset, v.label, v.subject, v.split, v.factors] for v in videos],
    }
    return hashlib.sha256(_canonical(core)).hexdigest()


def _jsonable(obj: Any, what: str) -> Any:
    """``obj`` with numpy scalars converted; raises if it is not plain JSON (no NaN)."""

    def conv(x: Any) -> Any:
        if isinstance(x, np.generic):
            return x.item()
        raise TypeError(f"{type(x).__name__} is not JSON serialisable")

    try:
        return json.loads(json.dumps(obj, default=conv, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} must be plain JSON values: {err}") from None


def _atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


class DatasetWriter:
    """Builds a prepared dataset in ``OUT.partial`` and renames it to ``OUT`` in :meth:`finalize`.

    Videos are appended in the order given; their frames go straight to disk, so memory stays flat.
    Each added video is also journalled, so with ``resume=True`` a writer that was interrupted (killed,
    out of disk) continues where it stopped: :meth:`has` tells which ids are already stored. Usable as a
    context manager: leaving the block without an exception finalizes, with one leaves the ``.partial``
    directory for a later resume (or :meth:`abort` to remove it).

    Args:
        out_dir: the dataset directory to create.
        height: frame height in pixels.
        width: frame width in pixels.
        fps: frame rate of the videos (frames per second).
        source: free description of where the data comes from (``"synth-actions 0.1"``, a path, ...).
        class_names: names of the label indices (empty: unlabeled dataset).
        attributes: dataset-level JSON metadata (generator options, factor descriptions, ...).
        overwrite: replace an existing ``out_dir`` at finalize (the old one stays until the new is complete).
        resume: continue a ``.partial`` directory left by an interrupted writer with the same size, fps,
            source, class names and attributes; otherwise a stale ``.partial`` is removed.
    """

    def __init__(self, out_dir: str | os.PathLike, height: int, width: int, fps: float, source: str,
                 class_names: Sequence[str] = (), attributes: Mapping[str, Any] | None = None,
                 overwrite: bool = False, resume: bool = False) -> None:  # fmt: skip
        if height < 1 or width < 1:
            raise ValueError(f"frame size must be positive, got {height}x{width}")
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number, got {fps}")
        if len(set(class_names)) != len(class_names):
            raise ValueError(f"class names must be unique, got {list(class_names)}")
        self.out_dir = Path(out_dir)
        if self.out_dir.name.endswith(PARTIAL_SUFFIX):
            raise ValueError(f"{self.out_dir}: a dataset name must not end with {PARTIAL_SUFFIX}")
        if self.out_dir.exists() and not overwrite:
            raise FileExistsError(f"{self.out_dir} already exists (pass overwrite=True to replace it)")
        self.height, self.width, self.fps, self.source = int(height), int(width), float(fps), str(source)
        self.class_names = [str(c) for c in class_names]
        self.attributes = _jsonable(dict(attributes or {}), "attributes")
        self.overwrite = overwrite
        self.partial = self.out_dir.with_name(self.out_dir.name + PARTIAL_SUFFIX)
        self.videos: list[VideoRecord] = []
        self._ids: set[str] = set()
        self._total = 0
        self._sha = hashlib.sha256()
        self._settings = {"height": self.height, "width": self.width, "fps": self.fps, "source": self.source,
                          "classes": self.class_names, "attributes": self.attributes}  # fmt: skip
        self._done = False
        if resume and self._can_resume():
            self._resume()
        else:
            if self.partial.exists():
                shutil.rmtree(self.partial)
            self.partial.mkdir(parents=True)
            self._frames = open(self.partial / FRAMES_FILE, "wb")  # noqa: SIM115 - closed in finalize/abort
            self._frames.write(_npy_header((0, self.height, self.width, 3)))
            self._journal = open(self.partial / JOURNAL_FILE, "w", encoding="utf-8")  # noqa: SIM115
            self._journal.write(json.dumps({"settings": self._settings}) + "\n")
            self._journal.flush()

    # -- resume ------------------------------------------------------------------------------------
    def _can_resume(self) -> bool:
        journal = self.partial / JOURNAL_FILE
        if not journal.is_file() or not (self.partial / FRAMES_FILE).is_file():
            return False
        with open(journal, encoding="utf-8") as f:
            first = f.readline()
        try:
            return json.loads(first).get("settings") == self._settings
        except json.JSONDecodeError:
            return False

    def _resume(self) -> None:
        lines = (self.partial / JOURNAL_FILE).read_text(encoding="utf-8").split("\n")
        frame_bytes = self.height * self.width * 3
        size = (self.partial / FRAMES_FILE).stat().st_size
        good = [lines[0]]
        for line in lines[1:]:
            try:
                rec = VideoRecord(**json.loads(line))
            except (json.JSONDecodeError, TypeError):
                break  # a torn last line: everything after it is redone
            if rec.offset != self._total or _NPY_HEADER_LEN + (self._total + rec.num_frames) * frame_bytes > size:
                break
            self.videos.append(rec)
            self._ids.add(rec.id)
            self._total += rec.num_frames
            good.append(line)
        end = _NPY_HEADER_LEN + self._total * frame_bytes
        self._frames = open(self.partial / FRAMES_FILE, "r+b")  # noqa: SIM115
        self._frames.truncate(end)
        self._frames.seek(_NPY_HEADER_LEN)
        while self._frames.tell() < end:
            self._sha.update(self._frames.read(min(_HASH_CHUNK, end - self._frames.tell())))
        _atomic_write_text(self.partial / JOURNAL_FILE, "\n".join(good) + "\n")
        self._journal = open(self.partial / JOURNAL_FILE, "a", encoding="utf-8")  # noqa: SIM115

    # -- writing -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.videos)

    def has(self, video_id: str) -> bool:
        """Whether a video of this id is already stored (after a resume, too)."""
        return video_id in self._ids

    def add_video(
        self,
        frames: np.ndarray,
        label: int = -1,
        subject: str = "",
        split: str = "",
        factors: Mapping[str, Any] | None = None,
        source: str = "",
        id: str | None = None,
    ) -> VideoRecord:
        """Append one video.

        Args:
            frames: ``(T, H, W, 3)`` uint8 RGB frames at the writer's size, ``T >= 1``.
            label: class index, ``-1`` for unlabeled.
            subject: subject / identity name.
            split: split name (``"train"``, ``"test"``, ...).
            factors: further per-video labels (JSON values; numpy scalars are converted).
            source: where this video came from.
            id: unique video id; default: its position, zero-padded (``"000042"``).

        Returns:
            The stored record.
        """
        if self._done:
            raise RuntimeError("the writer is finalized")
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != (self.height, self.width, 3):
            raise ValueError(
                f"frames must be uint8 (T, {self.height}, {self.width}, 3), got {frames.dtype} {frames.shape}"
            )
        if frames.shape[0] < 1:
            raise ValueError("a video needs at least one frame")
        label = int(label)
        if not (label == -1 or 0 <= label < len(self.class_names)):
            raise ValueError(f"label {label} out of range for {len(self.class_names)} classes (use -1 for none)")
        vid = f"{len(self.videos):06d}" if id is None else str(id)
        if vid in self._ids:
            raise ValueError(f"duplicate video id {vid!r}")
        rec = VideoRecord(id=vid, num_frames=int(frames.shape[0]), offset=self._total, label=label,
                          subject=str(subject), split=str(split),
                          factors=_jsonable(dict(factors or {}), f"factors of video {vid!r}"),
                          source=str(source))  # fmt: skip
        data = np.ascontiguousarray(frames).data
        self._frames.write(data)
        self._sha.update(data)
        self._frames.flush()
        self._journal.write(json.dumps(rec.to_json()) + "\n")
        self._journal.flush()
        self.videos.append(rec)
        self._ids.add(vid)
        self._total += rec.num_frames
        return rec

    def finalize(self) -> PreparedDataset:
        """Write the header and ``meta.json``, rename ``.partial`` to the dataset, and open it."""
        if self._done:
            raise RuntimeError("the writer is finalized")
        self._frames.seek(0)
        self._frames.write(_npy_header((self._total, self.height, self.width, 3)))
        self._frames.flush()
        os.fsync(self._frames.fileno())
        self._frames.close()
        self._journal.close()
        frames_sha = self._sha.hexdigest()
        meta = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "height": self.height,
            "width": self.width,
            "fps": self.fps,
            "source": self.source,
            "classes": self.class_names,
            "num_videos": len(self.videos),
            "total_frames": self._total,
            "frames_file": FRAMES_FILE,
            "frames_sha256": frames_sha,
            "content_hash": content_hash(frames_sha, self.height, self.width, self.fps, self.class_names, self.videos),
            "attributes": self.attributes,
            "videos": [v.to_json() for v in self.videos],
        }
        (self.partial / JOURNAL_FILE).unlink()
        _atomic_write_text(self.partial / META_FILE, json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
        old = self.out_dir.with_name(self.out_dir.name + ".old")
        if self.out_dir.exists():
            if not self.overwrite:
                raise FileExistsError(f"{self.out_dir} appeared while writing; the new data is in {self.partial}")
            if old.exists():
                shutil.rmtree(old)
            os.replace(self.out_dir, old)
        os.replace(self.partial, self.out_dir)
        if old.exists():
            shutil.rmtree(old)
        self._done = True
        return open_dataset(self.out_dir)

    def abort(self) -> None:
        """Close the files and remove the ``.partial`` directory."""
        if self._done:
            return
        self._frames.close()
        self._journal.close()
        shutil.rmtree(self.partial, ignore_errors=True)
        self._done = True

    def close(self) -> None:
        """Close the files, keeping ``.partial`` for a later ``resume=True`` writer."""
        if not self._done:
            self._frames.close()
            self._journal.close()
            self._done = True

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            if not self._done:
                self.finalize()
        else:
            self.close()


def _require(meta: Mapping[str, Any], key: str, types: type | tuple[type, ...], where: Path) -> Any:
    if key not in meta:
        raise DatasetError(f"{where}: missing key {key!r}")
    value = meta[key]
    if not isinstance(value, types) or isinstance(value, bool):
        raise DatasetError(f"{where}: key {key!r} has type {type(value).__name__}")
    return value


class PreparedDataset:
    """A prepared dataset opened read-only; frames are a memory map shared by DataLoader workers.

    Open with :func:`open_dataset`. Pickling (for worker processes) drops the memory map; it is
    re-opened on first use.

    Attributes:
        path: the dataset directory.
        frames_path: the frames file (``frames.npy``).
        meta: the parsed ``meta.json``.
        height: frame height in pixels.
        width: frame width in pixels.
        fps: frame rate (frames per second).
        source: description of the origin.
        classes: class names (label ``i`` is ``classes[i]``).
        videos: one :class:`VideoRecord` per video.
        attributes: dataset-level metadata written by the preparer (e.g. generator options).
        content_hash: SHA-256 of the frame bytes and the labels (see :func:`content_hash`).
    """

    def __init__(self, path: Path, meta: dict[str, Any], videos: list[VideoRecord], data_offset: int) -> None:
        self.path, self.meta, self.videos, self._data_offset = path, meta, videos, data_offset
        self.height, self.width = int(meta["height"]), int(meta["width"])
        self.fps = float(meta["fps"])
        self.source = str(meta["source"])
        self.classes: tuple[str, ...] = tuple(meta["classes"])
        self.attributes: dict[str, Any] = dict(meta.get("attributes", {}))
        self.content_hash = str(meta["content_hash"])
        self.total_frames = int(meta["total_frames"])
        self.labels = np.array([v.label for v in videos], dtype=np.int64)
        self.num_frames = np.array([v.num_frames for v in videos], dtype=np.int64)
        self.offsets = np.array([v.offset for v in videos], dtype=np.int64)
        self.frames_path = path / str(meta.get("frames_file", FRAMES_FILE))
        self._array: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.videos)

    def __repr__(self) -> str:
        return (f"PreparedDataset({str(self.path)!r}, videos={len(self)}, frames={self.total_frames}, "
                f"size={self.height}x{self.width}, classes={len(self.classes)}, splits={self.splits()})")  # fmt: skip

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_array"] = None
        return state

    @property
    def array(self) -> np.ndarray:
        """All frames, ``(total_frames, H, W, 3)`` uint8, memory-mapped read-only."""
        if self._array is None:
            self._array = np.memmap(self.frames_path, dtype=np.uint8, mode="r", offset=self._data_offset,
                                    shape=(self.total_frames, self.height, self.width, 3))  # fmt: skip
        return self._array

    def frames(self, i: int) -> np.ndarray:
        """Video ``i`` as a read-only ``(T, H, W, 3)`` uint8 view (no copy, no decoding)."""
        v = self.videos[i]
        return self.array[v.offset : v.offset + v.num_frames]

    def splits(self) -> dict[str, int]:
        """Number of videos per split name."""
        out: dict[str, int] = {}
        for v in self.videos:
            out[v.split] = out.get(v.split, 0) + 1
        return out

    def split(self, name: str | None) -> list[int]:
        """Indices of the videos of split ``name`` (``None``: all). Raises if no video has that split."""
        if name is None:
            return list(range(len(self)))
        idx = [i for i, v in enumerate(self.videos) if v.split == name]
        if not idx:
            raise DatasetError(f"{self.path}: no video in split {name!r} (splits: {sorted(self.splits())})")
        return idx

    def verify(self) -> None:
        """Re-read every frame and check the stored SHA-256 and content hash; raises :class:`DatasetError`."""
        sha = hashlib.sha256()
        with open(self.frames_path, "rb") as f:
            f.seek(self._data_offset)
            while chunk := f.read(_HASH_CHUNK):
                sha.update(chunk)
        if sha.hexdigest() != self.meta["frames_sha256"]:
            raise DatasetError(f"{self.frames_path}: frame bytes do not match the SHA-256 in {META_FILE}")
        expected = content_hash(sha.hexdigest(), self.height, self.width, self.fps, self.classes, self.videos)
        if expected != self.content_hash:
            raise DatasetError(f"{self.path / META_FILE}: content hash does not match the metadata")


def open_dataset(path: str | os.PathLike, verify: bool = False) -> PreparedDataset:
    """Open and validate a prepared dataset directory.

    Checks the metadata (format name, version, required keys, per-video records, labels in range) and
    that the frames file has exactly the size the metadata implies; with ``verify=True`` it also re-hashes
    every frame (reads the whole file).

    Args:
        path: the dataset directory (as given to :class:`DatasetWriter`).
        verify: also check the SHA-256 of the frames.

    Returns:
        The opened dataset.

    Raises:
        DatasetError: naming the path and what is wrong.
    """
    root = Path(path)
    if root.name.endswith(PARTIAL_SUFFIX):
        raise DatasetError(f"{root}: an unfinished dataset (a writer was interrupted); write it again")
    if not root.is_dir():
        hint = (
            " (a writer was interrupted; write it again)" if root.with_name(root.name + PARTIAL_SUFFIX).exists() else ""
        )
        raise DatasetError(f"{root}: no such dataset directory{hint}")
    meta_path = root / META_FILE
    if not meta_path.is_file():
        raise DatasetError(f"{meta_path}: missing; {root} is not a prepared dataset (see `g3an data`)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(f"{meta_path}: not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise DatasetError(f"{meta_path}: not a {FORMAT_NAME} dataset (format {found!r})")
    version = _require(meta, "version", int, meta_path)
    if version > FORMAT_VERSION:
        raise DatasetError(
            f"{meta_path}: format version {version} is newer than this g3an reads ({FORMAT_VERSION}); upgrade g3an"
        )
    if version < 1:
        raise DatasetError(f"{meta_path}: invalid format version {version}")
    for key, types in (("height", int), ("width", int), ("fps", (int, float)), ("source", str),
                       ("classes", list), ("total_frames", int), ("frames_sha256", str),
                       ("content_hash", str), ("videos", list)):  # fmt: skip
        _require(meta, key, types, meta_path)
    height, width, total = meta["height"], meta["width"], meta["total_frames"]
    if height < 1 or width < 1 or total < 0:
        raise DatasetError(f"{meta_path}: invalid size {height}x{width} or total_frames {total}")
    n_cls = len(meta["classes"])
    videos: list[VideoRecord] = []
    end = 0
    for i, entry in enumerate(meta["videos"]):
        try:
            rec = VideoRecord(**entry)
        except TypeError as err:
            raise DatasetError(f"{meta_path}: video record {i} is malformed ({err})") from None
        if rec.offset != end or rec.num_frames < 1:
            raise DatasetError(f"{meta_path}: video {rec.id!r} has frames [{rec.offset}, +{rec.num_frames}), "
                               f"expected to start at {end}")  # fmt: skip
        if not (rec.label == -1 or 0 <= rec.label < n_cls):
            raise DatasetError(f"{meta_path}: video {rec.id!r} has label {rec.label} but there are {n_cls} classes")
        end += rec.num_frames
        videos.append(rec)
    if end != total:
        raise DatasetError(f"{meta_path}: videos cover {end} frames but total_frames is {total}")
    if len({v.id for v in videos}) != len(videos):
        raise DatasetError(f"{meta_path}: duplicate video ids")
    frames_name = str(meta.get("frames_file", FRAMES_FILE))
    if Path(frames_name).name != frames_name:
        raise DatasetError(f"{meta_path}: frames_file must be a file name inside the dataset, got {frames_name!r}")
    frames_path = root / frames_name
    if not frames_path.is_file():
        raise DatasetError(f"{frames_path}: missing frames file")
    shape, data_offset = _read_npy_shape(frames_path)
    if shape != (total, height, width, 3):
        raise DatasetError(f"{frames_path}: array shape {shape} does not match the metadata "
                           f"({total}, {height}, {width}, 3)")  # fmt: skip
    expected = data_offset + total * height * width * 3
    actual = frames_path.stat().st_size
    if actual != expected:
        state = "truncated" if actual < expected else "longer than expected"
        raise DatasetError(f"{frames_path}: {state} ({actual} bytes, the metadata implies {expected})")
    ds = PreparedDataset(root, meta, videos, data_offset)
    if verify:
        ds.verify()
    return ds
