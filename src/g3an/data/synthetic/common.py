"""Shared pieces of the procedural datasets: seeding, anti-aliased drawing, backgrounds, subject / split plans.

Drawing happens on a canvas ``supersample`` times larger than the output with Pillow's ``ImageDraw``
(integer rasterisation, the same on every machine) and is reduced by box averaging, which gives
``supersample**2`` levels of edge coverage. Randomness comes from numpy ``PCG64`` generators seeded
by ``(seed, stream, index)``, so any video can be drawn alone, in any process, in any order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "Scene",
    "VideoPlan",
    "background_texture",
    "capsule_points",
    "ellipse_points",
    "make_rng",
    "plan_videos",
    "shade",
]

# Streams of random numbers; never reuse a number for another purpose.
STREAM_SUBJECT = 1
STREAM_MOTION = 2
STREAM_SPLIT = 3

_ARC = 10  # points per half circle of capsules


def make_rng(seed: int, stream: int, index: int) -> np.random.Generator:
    """The generator of one (seed, stream, index): independent of every other triple, fixed across machines."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(stream), int(index)])))


def shade(color: Sequence[float], factor: float) -> tuple[int, int, int]:
    """``color`` scaled by ``factor`` (darker below 1, towards white above 1), as an RGB tuple."""
    c = np.asarray(color, dtype=np.float64)
    c = c * factor if factor <= 1 else c + (255 - c) * (factor - 1)
    return tuple(int(v) for v in np.clip(np.rint(c), 0, 255))


def mix(a: Sequence[float], b: Sequence[float], t: float) -> tuple[int, int, int]:
    """Linear mix of two RGB colours (``t = 0``: ``a``)."""
    c = (1 - t) * np.asarray(a, np.float64) + t * np.asarray(b, np.float64)
    return tuple(int(v) for v in np.clip(np.rint(c), 0, 255))


def ellipse_points(cx: Any, cy: Any, rx: float, ry: float, angle: Any = 0.0, n: int = 24) -> np.ndarray:
    """Points ``(..., n, 2)`` on ellipses rotated by ``angle`` radians (centres may be arrays ``(...)``)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    ca, sa = np.cos(np.asarray(angle))[..., None], np.sin(np.asarray(angle))[..., None]
    return np.stack([np.asarray(cx)[..., None] + ca * x - sa * y, np.asarray(cy)[..., None] + sa * x + ca * y], -1)


_HALF = np.linspace(-np.pi / 2, np.pi / 2, _ARC)


def capsule_points(a: np.ndarray, b: np.ndarray, ra: Any, rb: Any) -> np.ndarray:
    """Outlines ``(..., 2 * _ARC, 2)`` of tapered capsules from ``a`` (radius ``ra``) to ``b`` (radius ``rb``)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ang = np.arctan2(b[..., 1] - a[..., 1], b[..., 0] - a[..., 0])[..., None]
    tb, ta = ang + _HALF, ang + np.pi + _HALF
    ra, rb = np.asarray(ra, np.float64)[..., None], np.asarray(rb, np.float64)[..., None]
    xs = np.concatenate([b[..., :1] + rb * np.cos(tb), a[..., :1] + ra * np.cos(ta)], -1)
    ys = np.concatenate([b[..., 1:] + rb * np.sin(tb), a[..., 1:] + ra * np.sin(ta)], -1)
    return np.stack([xs, ys], -1)


Color = tuple[int, int, int]


class Scene:
    """The shapes of a whole video, drawn in order over per-frame backgrounds.

    Geometry is given for all ``T`` frames at once (arrays with a leading frame axis, or without it for
    shapes that do not move) and converted to canvas coordinates in one numpy pass per shape; the
    per-frame loop only calls the rasteriser. Coordinates are output pixels, ``y`` down. ``visible``
    (a ``(T,)`` bool array) hides a shape in some frames.

    Args:
        frames: number of frames ``T``.
        ss: supersampling factor.
    """

    def __init__(self, frames: int, ss: int) -> None:
        self.frames, self.ss = frames, ss
        self._items: list[tuple[str, np.ndarray, Color, int, np.ndarray | None]] = []

    def _points(self, pts: np.ndarray) -> np.ndarray:
        """Per-frame flat canvas coordinates ``(T, 2N)``, rounded to integers.

        Pillow rasterises on the integer grid, so rounding here loses nothing and keeps the output
        independent of how a platform rounds inside Pillow. The rows are float32 buffers, which
        Pillow reads directly (no conversion to Python lists).
        """
        p = np.broadcast_to(np.asarray(pts, np.float64), (self.frames, *np.shape(pts)[-2:]))
        return np.ascontiguousarray(np.rint(p * self.ss).reshape(self.frames, -1), dtype=np.float32)

    def _boxes(self, c: np.ndarray, rx: Any, ry: Any) -> np.ndarray:
        c = np.broadcast_to(np.asarray(c, np.float64), (self.frames, 2)) * self.ss
        rx = np.broadcast_to(np.asarray(rx, np.float64), (self.frames,)) * self.ss
        ry = np.broadcast_to(np.asarray(ry, np.float64), (self.frames,)) * self.ss
        boxes = np.rint(np.stack([c[:, 0] - rx, c[:, 1] - ry, c[:, 0] + rx - 1, c[:, 1] + ry - 1], 1))
        boxes = np.maximum(boxes, boxes[:, [0, 1, 0, 1]])  # a box must not be inverted
        return np.ascontiguousarray(boxes, dtype=np.float32)

    def polygon(self, pts: np.ndarray, fill: Color, visible: np.ndarray | None = None) -> None:
        """Filled polygons ``(T, N, 2)`` (or ``(N, 2)`` for all frames)."""
        self._items.append(("polygon", self._points(pts), fill, 0, visible))

    def circle(self, c: np.ndarray, r: Any, fill: Color, visible: np.ndarray | None = None) -> None:
        """Filled disks: centres ``(T, 2)`` or ``(2,)``, radius scalar or ``(T,)``."""
        self._items.append(("ellipse", self._boxes(c, r, r), fill, 0, visible))

    def ring(self, c: np.ndarray, rx: Any, ry: Any, width: float, fill: Color,
             visible: np.ndarray | None = None) -> None:  # fmt: skip
        """Axis-aligned elliptic outlines ``width`` pixels wide, inside the ellipse of radii ``rx``, ``ry``."""
        self._items.append(("ring", self._boxes(c, rx, ry), fill, max(1, round(width * self.ss)), visible))

    def line(self, pts: np.ndarray, width: float, fill: Color, visible: np.ndarray | None = None) -> None:
        """Polylines ``(T, N, 2)`` of ``width`` pixels with rounded joins."""
        self._items.append(("line", self._points(pts), fill, max(1, round(width * self.ss)), visible))

    def ellipse(self, c: np.ndarray, rx: float, ry: float, fill: Color, angle: Any = 0.0, n: int = 24,
                visible: np.ndarray | None = None) -> None:  # fmt: skip
        """Filled, possibly rotated ellipses (as polygons)."""
        c = np.asarray(c, np.float64)
        self.polygon(ellipse_points(c[..., 0], c[..., 1], rx, ry, angle, n), fill, visible)

    def capsule(self, a: np.ndarray, b: np.ndarray, ra: Any, rb: Any, fill: Color,
                visible: np.ndarray | None = None) -> None:  # fmt: skip
        """Limbs: two disks joined by their tangents."""
        self.polygon(capsule_points(a, b, ra, rb), fill, visible)

    def draw(self, img: Image.Image, t: int) -> None:
        """Draw the shapes of frame ``t`` onto ``img`` (supersampled canvas) in place."""
        draw = ImageDraw.Draw(img)
        for kind, coords, fill, width, visible in self._items:
            if visible is not None and not visible[t]:
                continue
            if kind == "polygon":
                draw.polygon(coords[t], fill=fill)
            elif kind == "ellipse":
                draw.ellipse(coords[t], fill=fill)
            elif kind == "ring":
                draw.ellipse(coords[t], outline=fill, width=width)
            else:
                draw.line(coords[t], fill=fill, width=width, joint="curve")

    def render(self, background: Image.Image, boxes: Sequence[tuple[int, int, int, int]] | None = None) -> np.ndarray:
        """Draw every frame over a crop of ``background`` (supersampled) and box-reduce it.

        Args:
            background: RGB image at ``ss`` times the output resolution.
            boxes: per-frame crop box of ``background`` in its pixels (``None``: all of it, every frame).

        Returns:
            ``(T, H, W, 3)`` uint8.
        """
        out = None
        for t in range(self.frames):
            img = background.crop(boxes[t]) if boxes is not None else background.copy()
            self.draw(img, t)
            small = np.asarray(img.reduce(self.ss) if self.ss > 1 else img)
            if out is None:
                out = np.empty((self.frames, *small.shape), np.uint8)
            out[t] = small
        assert out is not None
        return out


#: Palettes shared by both datasets (names are the factor values stored in the metadata).
SKIN = {
    "porcelain": (247, 222, 203),
    "light": (236, 194, 161),
    "beige": (216, 168, 124),
    "tan": (186, 132, 88),
    "brown": (140, 92, 60),
    "dark": (88, 58, 40),
}
HAIR_COLOR = {
    "black": (28, 24, 22),
    "dark-brown": (74, 46, 26),
    "brown": (128, 82, 44),
    "blonde": (226, 190, 112),
    "red": (176, 72, 34),
    "grey": (176, 176, 172),
}
CLOTHES = {
    "red": (204, 42, 42),
    "orange": (238, 132, 30),
    "yellow": (242, 208, 52),
    "green": (52, 152, 62),
    "teal": (28, 152, 152),
    "blue": (44, 92, 204),
    "purple": (122, 60, 172),
    "pink": (232, 122, 172),
    "white": (242, 242, 236),
    "black": (36, 36, 42),
}


def pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    """One of ``options``, uniformly."""
    return str(options[int(rng.integers(len(options)))])


def uniform(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    """A uniform draw in ``bounds``, rounded to 4 decimals so the metadata stays readable and exact."""
    return round(float(rng.uniform(bounds[0], bounds[1])), 4)


def smoothstep(x: Any) -> Any:
    """``3x^2 - 2x^3`` of ``x`` clipped to ``[0, 1]`` (scalars or arrays)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def upsample(image: np.ndarray, ss: int) -> np.ndarray:
    """Nearest-neighbour upsampling by ``ss`` (box-reducing the result gives ``image`` back exactly)."""
    return np.ascontiguousarray(np.repeat(np.repeat(image, ss, axis=0), ss, axis=1))


def smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Value noise in ``[0, 1]``, ``(height, width)``, with features about ``cell`` pixels wide."""
    gh, gw = int(np.ceil(height / cell)) + 2, int(np.ceil(width / cell)) + 2
    grid = rng.random((gh, gw))
    y = np.arange(height) / cell
    x = np.arange(width) / cell
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    fy, fx = y - y0, x - x0
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bot = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy[:, None]) + bot * fy[:, None]


#: Background textures shared by both datasets.
TEXTURES = ("plain", "gradient", "stripes", "bricks", "mottled")


def background_texture(rng: np.random.Generator, texture: str, color: Sequence[int], height: int, width: int,
                       scale: float) -> np.ndarray:  # fmt: skip
    """A ``(height, width, 3)`` uint8 background of one colour and texture.

    Args:
        rng: source of the texture's own randomness (stripe widths, noise).
        texture: one of :data:`TEXTURES`.
        color: base RGB colour.
        height: pixels.
        width: pixels.
        scale: pixels per unit of pattern size (the image height is a good choice), so textures look
            the same at every resolution.
    """
    base = np.asarray(color, np.float64)
    ys = np.arange(height)[:, None] / max(height - 1, 1)
    xs = np.arange(width)[None, :]
    if texture == "plain":
        light = 1.0 + 0.04 * (0.5 - ys) + np.zeros((1, width))
    elif texture == "gradient":
        light = 1.22 - 0.4 * ys + np.zeros((1, width))
    elif texture == "stripes":
        period = scale * rng.uniform(0.08, 0.2)
        duty = rng.uniform(0.35, 0.65)
        phase = rng.uniform(0, period)
        on = ((xs + phase) % period) < duty * period
        light = np.where(on, 1.0, rng.uniform(0.78, 0.88)) + np.zeros((height, 1))
    elif texture == "bricks":
        bh = scale * rng.uniform(0.06, 0.1)
        bw = bh * rng.uniform(2.0, 2.8)
        row = np.floor(np.arange(height)[:, None] / bh)
        shift = (row % 2) * bw / 2
        mortar = ((np.arange(height)[:, None] % bh) < max(1.0, bh * 0.14)) | (((xs + shift) % bw) < max(1.0, bw * 0.06))
        tint = 0.92 + 0.12 * rng.random(int(height / bh) + 2)
        light = np.where(mortar, 1.3, tint[row.astype(int)] + np.zeros((1, width)))
    elif texture == "mottled":
        n = smooth_noise(rng, height, width, scale * 0.12) * 0.6 + smooth_noise(rng, height, width, scale * 0.04) * 0.4
        light = 0.8 + 0.4 * n
    else:
        raise ValueError(f"unknown texture {texture!r}; choose from {TEXTURES}")
    img = base[None, None, :] * light[:, :, None]
    img = np.where(light[:, :, None] > 1, base + (255 - base) * (light[:, :, None] - 1), img)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class VideoPlan:
    """What one video of a synthetic dataset shows, before any drawing.

    Attributes:
        index: position in the dataset.
        label: class index.
        subject: subject index (its appearance is a function of ``(seed, subject)``).
        split: ``"train"`` or ``"test"``.
    """

    index: int
    label: int
    subject: int
    split: str


def num_subjects(videos: int, classes: int, subjects: int | None) -> int:
    """Subjects of a dataset: ``subjects``, or by default one per ``classes`` videos."""
    if subjects is None:
        return max(1, -(-videos // classes))
    if subjects < 1:
        raise ValueError(f"subjects must be at least 1, got {subjects}")
    return subjects


def plan_videos(videos: int, classes: int, seed: int, subjects: int | None = None,
                test_fraction: float = 0.2) -> list[VideoPlan]:  # fmt: skip
    """Labels, subjects and splits of a synthetic dataset.

    Video ``i`` shows class ``i % classes`` (balanced to within one video) performed by subject
    ``(i // classes) % S``, so each subject performs every class in turn. A seeded random
    ``test_fraction`` of the subjects (at least one when there are two or more) forms the test split:
    test subjects never appear in training.

    Args:
        videos: number of videos.
        classes: number of classes.
        seed: dataset seed.
        subjects: number of subjects ``S`` (``None``: ``ceil(videos / classes)``, every subject
            performs each class once).
        test_fraction: share of the subjects held out for testing, in ``[0, 1)``.
    """
    if videos < 1:
        raise ValueError(f"videos must be at least 1, got {videos}")
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    s = num_subjects(videos, classes, subjects)
    n_test = 0 if s < 2 or test_fraction == 0 else min(s - 1, max(1, round(test_fraction * s)))
    test = set(make_rng(seed, STREAM_SPLIT, 0).permutation(s)[:n_test].tolist())
    plans = []
    for i in range(videos):
        subj = (i // classes) % s
        plans.append(VideoPlan(index=i, label=i % classes, subject=subj, split="test" if subj in test else "train"))
    return plans
