"""``g3an study create``: render the video pairs of a two-alternative preference study once.

A study directory holds::

    STUDY/
      study.json        the manifest (format ``g3an-study``): methods, seed, question, every pair with its
                        two media ids, which side shows method A, and the attention-check pairs
      media/<id>.mp4    each video, H.264 (yuv420p) so every browser plays it; ids are random hex
      answers.sqlite    written by ``g3an study serve`` (see :mod:`g3an.study.db`)
      results.json/.md  written by ``g3an study results``

Pairs are drawn with ``random.Random(seed)`` and the recorded seed: which videos, in which order the
pairs are listed, and on which side (left/right) each method appears. The order each rater sees is
shuffled again per rater by the server. Attention checks show a clean video against the same video
made obviously broken (heavy noise and scrambled frames); the clean one is the correct answer.
"""

from __future__ import annotations

import datetime
import json
import math
import random
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from g3an import __version__
from g3an.checkpoint import atomic_write

__all__ = [
    "QUESTION",
    "STUDY_FORMAT",
    "MediaSource",
    "StudyError",
    "create_study",
    "is_prepared_dataset",
    "load_manifest",
    "open_source",
]

STUDY_FORMAT = "g3an-study"
STUDY_FORMAT_VERSION = 1
MANIFEST = "study.json"
MEDIA_DIR = "media"
QUESTION = "Which video clip is more realistic?"


class StudyError(ValueError):
    """A bad study argument or a broken study directory.

    Attributes:
        param: the command-line flag it comes from (``--a``, ``--pairs``, ...), or ``None``.
    """

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def is_prepared_dataset(path: str | Path) -> bool:
    """Whether ``path`` is a prepared dataset directory (``meta.json`` with format ``g3an-prepared-video``)."""
    meta = Path(path) / "meta.json"
    if not meta.is_file():
        return False
    try:
        return json.loads(meta.read_text(encoding="utf-8")).get("format") == "g3an-prepared-video"
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return False


@dataclass
class MediaSource:
    """Where one side's videos come from: a generator or the real videos of a prepared dataset.

    Attributes:
        name: the method's name in the tables (``g3an``, ``real``, ...).
        kind: ``model`` or ``real``.
        path: the checkpoint file or dataset directory.
        classes: class names (``None``: unlabeled / unconditional).
        fps: frame rate of the rendered videos.
        identity: SHA-256 of the checkpoint, or the dataset's content hash.
        generator: the model (``kind == "model"``).
        dataset: the prepared dataset (``kind == "real"``).
        indices: the dataset videos to draw from (``None``: all).
    """

    name: str
    kind: str
    path: Path
    classes: list[str] | None
    fps: float
    identity: str
    generator: Any = None
    dataset: Any = None
    indices: list[int] | None = None

    def record(self) -> dict[str, Any]:
        """The manifest entry of this method."""
        rec = {"name": self.name, "kind": self.kind, "path": str(self.path), "identity": self.identity,
               "classes": self.classes}  # fmt: skip
        if self.kind == "real":
            rec["videos"] = len(self.indices) if self.indices is not None else len(self.dataset)
        return rec


def open_source(path: str | Path, name: str | None, param: str, fps: float = 8.0,
                split: str | None = None) -> MediaSource:  # fmt: skip
    """Open ``path``: a prepared dataset directory (real videos), or a checkpoint / run directory (a model).

    Args:
        path: the checkpoint, run directory, exported generator or prepared dataset.
        name: the method's name (``None``: the model name, or ``real``).
        param: the flag to name in errors.
        fps: frame rate of generated videos.
        split: for a dataset, draw only videos of this split (``None``: all).

    Raises:
        StudyError: naming ``param`` when the path is neither.
    """
    from g3an.checkpoint import CheckpointError
    from g3an.data.format import DatasetError, open_dataset
    from g3an.sample import SamplingError, load_for_sampling

    path = Path(path)
    if not path.exists():
        raise StudyError(f"{path}: no such checkpoint, run directory or prepared dataset", param)
    if is_prepared_dataset(path):
        try:
            ds = open_dataset(path)
        except DatasetError as err:
            raise StudyError(str(err), param) from None
        try:
            indices = ds.split(split)
        except DatasetError as err:
            raise StudyError(str(err), "--split") from None
        if not indices:
            raise StudyError(f"{path}: the dataset has no videos", param)
        labelled = bool(ds.classes) and bool((ds.labels[indices] >= 0).any())
        return MediaSource(name or "real", "real", path, list(ds.classes) if labelled else None, ds.fps,
                           ds.content_hash, dataset=ds, indices=indices)  # fmt: skip
    try:
        loaded = load_for_sampling(path)
    except (CheckpointError, SamplingError) as err:
        raise StudyError(str(err), param) from None
    gen = loaded.generator
    classes = None
    if gen.num_classes:
        classes = loaded.class_names or [str(i) for i in range(gen.num_classes)]
    return MediaSource(name or loaded.ref.model, "model", Path(loaded.ref.path), classes, fps, loaded.ref.sha256,
                       generator=gen)  # fmt: skip


@dataclass
class _Clip:
    source: MediaSource
    label: int | None  # class index in the source, None: unconditional / any
    index: int = -1  # dataset video index (real) or draw index (model)


@dataclass
class StudyOptions:
    """Options of :func:`create_study` (recorded in the manifest).

    Attributes:
        pairs: comparison pairs per pair of methods (A vs B).
        same_class: both videos of a pair show the same class (when both sides have classes).
        checks: attention-check pairs added, as a fraction of all comparison pairs (at least one when > 0).
        seed: seed of every random choice.
        frames: frames per model video (``None``: the generator's default); real videos are cut to the
            same length when they are longer.
        fps: frame rate of the model videos (real ones keep their dataset's).
        question: the question shown to raters.
        size: ``(height, width)`` every video is resized to; ``None``: the smallest frame size of all
            methods, so no method looks sharper only because it has more pixels.
    """

    pairs: int = 50
    same_class: bool = False
    checks: float = 0.1
    seed: int = 0
    frames: int | None = None
    fps: float = 8.0
    question: str = QUESTION
    size: tuple[int, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _present(src: MediaSource) -> set[int]:
    """Class indices ``src`` can show: every class of a model, the labels of a dataset's videos."""
    if src.kind == "model":
        return set(range(len(src.classes or [])))
    indices = src.indices if src.indices is not None else range(len(src.dataset))
    return {int(src.dataset.labels[i]) for i in indices}


def _class_plan(a: MediaSource, b: MediaSource, same_class: bool) -> list[tuple[int, int]] | None:
    """Pairs of class indices ``(in A, in B)`` a same-class pair may use, or ``None`` for no constraint."""
    if not same_class:
        return None
    if a.classes is None or b.classes is None:
        missing = a if a.classes is None else b
        raise StudyError(f"--same-class needs class labels on both sides; {missing.name} ({missing.path}) has none",
                         "--same-class")  # fmt: skip
    common = [(a.classes.index(c), b.classes.index(c)) for c in a.classes if c in b.classes]
    common = [(ia, ib) for ia, ib in common if ia in _present(a) and ib in _present(b)]
    if not common:
        raise StudyError(f"--same-class: {a.name} and {b.name} have no class (with videos) in common "
                         f"({a.classes} vs {b.classes})", "--same-class")  # fmt: skip
    return common


def _pick(src: MediaSource, label: int | None, rng: random.Random, used: set[int]) -> _Clip:
    if src.kind == "model":
        if label is None and src.classes is not None:
            label = rng.randrange(len(src.classes))
        return _Clip(src, label)
    candidates = list(src.indices if src.indices is not None else range(len(src.dataset)))
    if label is not None:
        candidates = [i for i in candidates if int(src.dataset.labels[i]) == label]
        if not candidates:
            raise StudyError(f"{src.path}: no video of class {src.classes[label]!r}", "--same-class")
    fresh = [i for i in candidates if i not in used] or candidates  # repeat videos only when the set runs out
    i = rng.choice(fresh)
    used.add(i)
    lab = int(src.dataset.labels[i])
    return _Clip(src, lab if lab >= 0 else None, i)


@torch.no_grad()
def _render_model(src: MediaSource, clips: Sequence[_Clip], frames: int | None, seed: int, stream: str,
                  bar: tqdm, batch_size: int = 8) -> list[np.ndarray]:  # fmt: skip
    """Videos ``(T, H, W, 3)`` uint8 of the model clips, latents from the ``(seed, stream)`` CPU stream."""
    from g3an.media import to_uint8
    from g3an.sample import SamplingError, check_frames, draw_latents

    gen = src.generator
    try:
        frames = check_frames(gen, frames)
    except SamplingError as err:
        raise StudyError(str(err), "--frames") from None
    latents = draw_latents(gen, len(clips), frames, seed, stream)
    out: list[np.ndarray] = []
    for start in range(0, len(clips), batch_size):
        part = slice(start, start + batch_size)
        y = None
        if gen.num_classes:
            y = torch.tensor([c.label for c in clips[part]], dtype=torch.long)
        video = gen(**{k: v[part] for k, v in latents.items()}, y=y).float().cpu()
        out.extend(to_uint8(v, channel_axis=0) for v in video)
        bar.update(len(video))
    return out


def _real_frames(clip: _Clip, frames: int | None) -> np.ndarray:
    video = np.asarray(clip.source.dataset.frames(clip.index))
    return np.array(video[:frames] if frames else video)


def resize_video(video: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """``(T, H, W, 3)`` uint8 frames resized to ``size = (height, width)`` (antialiased bilinear; as-is if equal)."""
    h, w = int(size[0]), int(size[1])
    if video.shape[1:3] == (h, w):
        return video
    x = torch.from_numpy(np.ascontiguousarray(video)).permute(0, 3, 1, 2).float()
    x = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def broken_video(video: np.ndarray, rng: random.Random) -> np.ndarray:
    """An obviously broken copy of ``(T, H, W, 3)`` uint8 frames: frames scrambled and heavy noise added."""
    order = list(range(len(video)))
    rng.shuffle(order)
    noise = np.random.default_rng(rng.getrandbits(32)).normal(0.0, 90.0, size=video.shape)
    return np.clip(video[order].astype(np.float64) + noise, 0, 255).astype(np.uint8)


def _media_id(rng: random.Random, taken: set[str]) -> str:
    while True:
        mid = f"{rng.getrandbits(64):016x}"
        if mid not in taken:
            taken.add(mid)
            return mid


def _unique_names(sources: Sequence[MediaSource]) -> None:
    """Make method names unique (``g3an``, ``g3an-2``, ...) in place."""
    seen: dict[str, int] = {}
    for src in sources:
        seen[src.name] = seen.get(src.name, 0) + 1
        if seen[src.name] > 1:
            src.name = f"{src.name}-{seen[src.name]}"


def create_study(out: str | Path, a: MediaSource | Sequence[MediaSource], b: MediaSource | Sequence[MediaSource],
                 options: StudyOptions, overwrite: bool = False, progress: bool = False) -> dict[str, Any]:  # fmt: skip
    """Render the pairs of a study comparing each method of ``a`` with each of ``b`` into ``out``.

    Each comparison (method A, method B) gets ``options.pairs`` pairs, so one study can hold a whole
    table: G3AN against each baseline and against real videos, mixed for every rater. The directory is
    built as ``OUT.partial`` and renamed once complete, so an interrupted run never leaves a study that
    :func:`load_manifest` accepts.

    Returns:
        The manifest written to ``OUT/study.json``; ``progress`` shows a bar on stderr.

    Raises:
        StudyError: for bad options or an existing ``out`` without ``overwrite``.
    """
    from g3an.media import save_video

    out = Path(out)
    side_a = [a] if isinstance(a, MediaSource) else list(a)
    side_b = [b] if isinstance(b, MediaSource) else list(b)
    if not side_a or not side_b:
        raise StudyError("give at least one method on each side", "--a" if not side_a else "--b")
    if options.pairs < 1:
        raise StudyError(f"--pairs must be >= 1, got {options.pairs}", "--pairs")
    if not 0 <= options.checks < 1:
        raise StudyError(f"--checks must be in [0, 1), got {options.checks}", "--checks")
    if out.exists() and not overwrite:
        raise StudyError(f"{out} already exists (pass --overwrite to replace it)", "--out")
    sources: list[MediaSource] = []
    for src in side_a + side_b:
        if all(src is not s for s in sources):
            sources.append(src)
    _unique_names(sources)
    method_pairs = [(sa, sb) for sa in side_a for sb in side_b if sa is not sb]
    if not method_pairs:
        raise StudyError("nothing to compare: --a and --b name the same method", "--b")
    rng = random.Random(options.seed)
    plans = [_class_plan(sa, sb, options.same_class) for sa, sb in method_pairs]
    frames = options.frames
    if frames is None:
        models = [s for s in sources if s.kind == "model"]
        frames = min(m.generator.default_frames for m in models) if models else None
    used: dict[int, set[int]] = {id(s): set() for s in sources}
    comparisons: list[tuple[_Clip, _Clip]] = []
    for (sa, sb), classes in zip(method_pairs, plans):
        for _ in range(options.pairs):
            la = lb = None
            if classes is not None:
                la, lb = rng.choice(classes)
            clip_a = _pick(sa, la, rng, used[id(sa)])
            comparisons.append((clip_a, _pick(sb, lb, rng, used[id(sb)])))
    n_checks = 0 if options.checks == 0 else max(1, math.ceil(options.checks * len(comparisons)))
    clean_src = next((s for s in sources if s.kind == "real"), side_a[0])
    check_clips = [_pick(clean_src, None, rng, set()) for _ in range(n_checks)]

    by_source: dict[int, list[_Clip]] = {id(s): [] for s in sources}
    for clip in [c for pair in comparisons for c in pair] + check_clips:
        by_source[id(clip.source)].append(clip)
    n_render = sum(len(by_source[id(s)]) for s in sources if s.kind == "model")
    bar = tqdm(total=n_render + 2 * (len(comparisons) + n_checks), unit="video", desc="study create",
               disable=not progress)  # fmt: skip
    videos: dict[int, np.ndarray] = {}  # id(clip) -> frames
    for k, src in enumerate(sources):
        clips = by_source[id(src)]
        if src.kind == "model":
            rendered = _render_model(src, clips, options.frames, options.seed, f"study-{k}", bar)
        else:
            rendered = [_real_frames(c, frames) for c in clips]
        videos.update({id(c): v for c, v in zip(clips, rendered)})
    size = options.size or min(v.shape[1:3] for v in videos.values())
    videos = {k: resize_video(v, size) for k, v in videos.items()}

    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    (partial / MEDIA_DIR).mkdir(parents=True)
    taken: set[str] = set()
    media: dict[str, dict[str, Any]] = {}

    def write(frames_: np.ndarray, fps: float, what: dict[str, Any]) -> str:
        mid = _media_id(rng, taken)
        save_video(partial / MEDIA_DIR / f"{mid}.mp4", frames_, fps=fps)
        media[mid] = {"file": f"{MEDIA_DIR}/{mid}.mp4", **what}
        bar.update(1)
        return mid

    def describe(clip: _Clip) -> dict[str, Any]:
        cls = clip.source.classes[clip.label] if clip.label is not None and clip.source.classes else None
        d: dict[str, Any] = {"method": clip.source.name, "class": cls}
        if clip.source.kind == "real":
            d["video"] = clip.source.dataset.videos[clip.index].id
        return d

    pairs: list[dict[str, Any]] = []
    for clip_a, clip_b in comparisons:
        ma = write(videos[id(clip_a)], clip_a.source.fps, describe(clip_a))
        mb = write(videos[id(clip_b)], clip_b.source.fps, describe(clip_b))
        a_left = rng.random() < 0.5
        pairs.append({"kind": "compare", "a": clip_a.source.name, "b": clip_b.source.name,
                      "left": ma if a_left else mb, "right": mb if a_left else ma,
                      "a_side": "left" if a_left else "right"})  # fmt: skip
    for clip in check_clips:
        clean = videos[id(clip)]
        mc = write(clean, clip.source.fps, {**describe(clip), "check": "clean"})
        mbk = write(broken_video(clean, rng), clip.source.fps, {**describe(clip), "check": "broken"})
        c_left = rng.random() < 0.5
        pairs.append({"kind": "check", "left": mc if c_left else mbk, "right": mbk if c_left else mc,
                      "correct": "left" if c_left else "right"})  # fmt: skip
    bar.close()
    rng.shuffle(pairs)
    for i, pair in enumerate(pairs):
        pair["id"] = f"p{i:04d}"
    manifest = {
        "format": STUDY_FORMAT,
        "format_version": STUDY_FORMAT_VERSION,
        "question": options.question,
        "methods": {src.name: src.record() for src in sources},
        "comparisons": [[sa.name, sb.name] for sa, sb in method_pairs],
        "seed": options.seed,
        "options": {k: v for k, v in asdict(options).items() if k != "extra"},
        "video": {"size": [int(size[0]), int(size[1])], "frames": sorted({len(v) for v in videos.values()})},
        "pairs": [{"id": p.pop("id"), **p} for p in pairs],
        "media": media,
        "created": {
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "g3an": __version__,
            "torch": torch.__version__,
            **options.extra,
        },
    }
    atomic_write(partial / MANIFEST, lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=1) + "\n"))
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    return manifest


def load_manifest(study: str | Path) -> dict[str, Any]:
    """Read and check ``STUDY/study.json``.

    Raises:
        StudyError: when the directory is not a complete study or the manifest is inconsistent.
    """
    path = Path(study) / MANIFEST
    if not path.is_file():
        raise StudyError(f"{path}: missing; {study} is not a study made by `g3an study create`", "STUDY")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise StudyError(f"{path}: not valid JSON ({err})", "STUDY") from None
    if not isinstance(manifest, dict) or manifest.get("format") != STUDY_FORMAT:
        raise StudyError(f"{path}: not a {STUDY_FORMAT} manifest", "STUDY")
    if int(manifest.get("format_version", 0)) > STUDY_FORMAT_VERSION:
        raise StudyError(f"{path}: study format {manifest['format_version']} is newer than this g3an's", "STUDY")
    media = manifest.get("media")
    pairs = manifest.get("pairs")
    methods = manifest.get("methods")
    if not isinstance(media, dict) or not isinstance(pairs, list) or not pairs or not isinstance(methods, dict):
        raise StudyError(f"{path}: the manifest lacks its media, pairs or methods", "STUDY")
    ids = set()
    for pair in pairs:
        pid = pair.get("id") if isinstance(pair, dict) else None
        if not isinstance(pid, str) or pid in ids:
            raise StudyError(f"{path}: a pair without an id, or a repeated id {pid!r}", "STUDY")
        ids.add(pid)
        for side in ("left", "right"):
            if pair.get(side) not in media:
                raise StudyError(f"{path}: pair {pid!r} names unknown media {pair.get(side)!r}", "STUDY")
        key = {"compare": "a_side", "check": "correct"}.get(pair.get("kind"))
        if key is None or pair.get(key) not in ("left", "right"):
            raise StudyError(f"{path}: pair {pid!r} has no valid kind and {key or 'a_side/correct'}", "STUDY")
        if key == "a_side" and (pair.get("a") not in methods or pair.get("b") not in methods):
            raise StudyError(f"{path}: pair {pid!r} compares methods that are not in the manifest", "STUDY")
    return manifest
