"""Face crops for MUG and UvA-NEMO: an offline detector, a box smoothed over time, failures counted.

The detector is OpenCV's frontal-face Haar cascade, which ships inside the ``opencv-python-headless``
wheel (``cv2.data.haarcascades``; install with ``pip install 'g3an[faces]'``): nothing is downloaded at
run time. OpenCV 5 no longer ships the cascades, hence the ``<5`` pin of the extra.

Per video: the detector runs on every ``face_every``-th frame and keeps the largest face; frames where it
finds none are counted as failures and get a box interpolated from their neighbours; box centres and
sides are smoothed with a running median over ``face_window`` frames; the square crop of side
``face_margin x`` the face side is taken around the centre (the frame's edge pixels are repeated where the
box leaves it) and resized to ``size x size``. A video whose face is found in fewer than
``face_min_fraction`` of the searched frames is skipped with reason ``no_face``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from g3an.data.prepare.common import SkipError

if TYPE_CHECKING:
    from g3an.data.prepare.common import Preprocess

__all__ = ["Box", "Detector", "crop_boxes", "detect_boxes", "face_crop_video", "haar_detector", "smooth_boxes"]

#: ``(x, y, w, h)`` in pixels of the frame.
Box = tuple[float, float, float, float]
#: A face detector: RGB uint8 frame ``(H, W, 3)`` -> the faces found (any order).
Detector = Callable[[np.ndarray], list[Box]]

_CASCADE = "haarcascade_frontalface_default.xml"
_DETECT_MAX_SIDE = 320  # frames are shrunk to at most this long side for detection
_cache: dict[str, Detector] = {}


def haar_detector() -> Detector:
    """OpenCV's frontal-face Haar cascade from the installed wheel (one per process).

    Raises:
        ImportError: OpenCV is not installed or has no cascades, with the command that fixes it.
    """
    if "haar" in _cache:
        return _cache["haar"]
    try:
        import cv2
    except ImportError:
        raise ImportError(
            "face cropping needs OpenCV's Haar cascades: pip install 'g3an[faces]' "
            "(or pip install 'opencv-python-headless>=4.8,<5')"
        ) from None
    path = f"{cv2.data.haarcascades}{_CASCADE}"
    cascade = cv2.CascadeClassifier(path) if hasattr(cv2, "CascadeClassifier") else None
    if cascade is None or cascade.empty():
        raise ImportError(
            f"OpenCV {cv2.__version__} ships no {_CASCADE} (OpenCV 5 dropped the Haar cascades): "
            "pip install 'opencv-python-headless>=4.8,<5'"
        )

    def detect(frame: np.ndarray) -> list[Box]:
        h, w = frame.shape[:2]
        scale = min(1.0, _DETECT_MAX_SIDE / max(h, w))
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            gray = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        min_side = max(12, int(min(gray.shape) * 0.15))
        found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=4, minSize=(min_side, min_side))
        return [tuple(float(v) / scale for v in box) for box in np.asarray(found).reshape(-1, 4)]

    _cache["haar"] = detect
    return detect


def make_detector() -> Detector:
    """The detector used by :func:`face_crop_video` (tests replace this function)."""
    return haar_detector()


def detect_boxes(frames: np.ndarray, detector: Detector, every: int = 1) -> list[Box | None]:
    """The largest face of every ``every``-th frame (``None`` where none is found or not searched)."""
    boxes: list[Box | None] = [None] * len(frames)
    for t in range(0, len(frames), every):
        found = detector(frames[t])
        if found:
            boxes[t] = max(found, key=lambda b: (b[2] * b[3], -b[1], -b[0]))
    return boxes


def _running_median(x: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(x) <= 1:
        return x.copy()
    half = window // 2
    padded = np.pad(x, (half, half), mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1), axis=-1)


def smooth_boxes(boxes: list[Box | None], window: int = 9, margin: float = 1.6) -> np.ndarray:
    """Square crop boxes ``(T, 3)`` of centre x, centre y and side, smoothed over time.

    Missing boxes are linearly interpolated from the nearest detections (held constant beyond the first
    and last); centres and sides then go through a running median of ``window`` frames, which removes
    isolated false detections and jitter. The side is the larger of the face's width and height times
    ``margin``.

    Raises:
        ValueError: no box at all.
    """
    t_all = np.arange(len(boxes))
    known = [t for t, b in enumerate(boxes) if b is not None]
    if not known:
        raise ValueError("no face box to smooth")
    arr = np.array([boxes[t] for t in known], dtype=np.float64)
    cx = arr[:, 0] + arr[:, 2] / 2
    cy = arr[:, 1] + arr[:, 3] / 2
    side = np.maximum(arr[:, 2], arr[:, 3]) * margin
    out = np.stack([np.interp(t_all, known, v) for v in (cx, cy, side)], axis=1)
    return np.stack([_running_median(out[:, k], window) for k in range(3)], axis=1)


def crop_boxes(frames: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Crop the square ``boxes`` (centre x, centre y, side) from ``frames`` and resize to ``size x size``.

    Where a box leaves the frame the edge pixels are repeated.
    """
    out = np.empty((len(frames), size, size, 3), dtype=np.uint8)
    h, w = frames.shape[1:3]
    for t, (cx, cy, side) in enumerate(boxes):
        s = max(2, round(side))
        x0, y0 = round(cx - s / 2), round(cy - s / 2)
        x1, y1 = x0 + s, y0 + s
        pad = max(0, -x0, -y0, x1 - w, y1 - h)
        frame = frames[t]
        if pad:
            frame = np.pad(frame, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        crop = frame[y0 + pad : y1 + pad, x0 + pad : x1 + pad]
        out[t] = np.asarray(Image.fromarray(crop).resize((size, size), Image.Resampling.BILINEAR))
    return out


def face_crop_video(frames: np.ndarray, pre: Preprocess) -> tuple[np.ndarray, dict[str, Any]]:
    """Face-cropped ``(T, size, size, 3)`` frames and the detector statistics of one video.

    Raises:
        SkipError: ``no_face`` when the face is found in fewer than ``pre.face_min_fraction`` of the
            searched frames.
    """
    boxes = detect_boxes(frames, make_detector(), pre.face_every)
    searched = len(range(0, len(frames), pre.face_every))
    found = sum(b is not None for b in boxes)
    stats = {"frames": len(frames), "frames_searched": searched, "frames_found": found}
    if found == 0 or found < pre.face_min_fraction * searched:
        raise SkipError("no_face", f"a face was found in {found} of {searched} searched frames "
                                   f"(--face-min-fraction {pre.face_min_fraction})")  # fmt: skip
    smoothed = smooth_boxes(boxes, pre.face_window, pre.face_margin)
    return crop_boxes(frames, smoothed, pre.size), stats
