"""Writing (and, for tests, reading) videos and labelled video grids: mp4, gif and png filmstrips.

The one place that turns tensors into media files, used by dataset previews, sampling, training
snapshots and reports. Two input conventions, told apart by dtype:

* float tensors / arrays in ``[-1, 1]``, channels-first as everywhere in the library: a video
  ``(3, T, H, W)``, a batch ``(N, 3, T, H, W)``, a grid ``(R, C, 3, T, H, W)``. They become uint8 with
  ``round((x + 1) / 2 * 255)`` clamped to ``[0, 255]`` (:func:`to_uint8`), never with a per-batch
  min-max, so colours mean the same in every file.
* uint8 arrays, channels-last as stored on disk: ``(T, H, W, 3)``, ``(N, T, H, W, 3)``, ``(R, C, T, H, W, 3)``.

Formats, by extension: ``.mp4`` (H.264 through PyAV, yuv420p, odd sizes padded to even), ``.gif``
(Pillow, looping) and ``.png`` (a filmstrip: frames along x, one row per video). Files are written to a
temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from g3an.checkpoint import atomic_write

__all__ = ["VIDEO_EXTENSIONS", "read_video", "save_grid", "save_video", "to_uint8"]

VIDEO_EXTENSIONS = (".mp4", ".gif", ".png")

_BG = (255, 255, 255)  # margin colour
_FG = (20, 20, 20)  # label colour
_GAP = 2  # pixels between grid cells


def _channel_axis(shape: tuple[int, ...]) -> int:
    video = len(shape) >= 4 and shape[-4] == 3
    image = len(shape) >= 3 and shape[-3] == 3
    if video and image:
        raise ValueError(f"ambiguous layout {shape}: both axis -4 and -3 could be channels; pass channel_axis")
    if not (video or image):
        raise ValueError(f"expected (..., 3, T, H, W) or (..., 3, H, W) with 3 channels, got shape {shape}")
    return -4 if video else -3


def to_uint8(x: torch.Tensor | np.ndarray, channel_axis: int | None = None) -> np.ndarray:
    """Float videos or images in ``[-1, 1]`` to uint8 channels-last arrays.

    Args:
        x: ``(..., 3, T, H, W)`` videos or ``(..., 3, H, W)`` images, float in ``[-1, 1]`` (values outside
            are clamped, NaN counts as 0, mid grey). A uint8 input is taken as already converted and only transposed.
        channel_axis: the channel axis; ``None`` finds it (``-4`` for videos, ``-3`` for images) and raises
            when both axes have size 3.

    Returns:
        uint8 array with the channel axis moved last, e.g. ``(T, H, W, 3)`` for one video.
    """
    arr = x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    axis = _channel_axis(arr.shape) if channel_axis is None else channel_axis
    if arr.shape[axis] != 3:
        raise ValueError(f"channel axis {axis} of shape {arr.shape} has size {arr.shape[axis]}, expected 3")
    if arr.dtype != np.uint8:
        arr = np.rint(np.clip((np.nan_to_num(arr.astype(np.float32)) + 1.0) * 127.5, 0.0, 255.0)).astype(np.uint8)
    return np.ascontiguousarray(np.moveaxis(arr, axis, -1))


def _as_frames(video: torch.Tensor | np.ndarray, what: str) -> np.ndarray:
    """One video as uint8 ``(T, H, W, 3)``: float ``(3, T, H, W)`` in [-1, 1] or uint8 ``(T, H, W, 3)``."""
    if isinstance(video, np.ndarray) and video.dtype == np.uint8:
        if video.ndim == 3:
            video = video[None]
        if video.ndim != 4 or video.shape[-1] != 3:
            raise ValueError(f"{what}: uint8 frames must be (T, H, W, 3), got {video.shape}")
        return video
    if (isinstance(video, torch.Tensor) and video.dtype == torch.uint8) or video.ndim != 4 or video.shape[0] != 3:
        raise ValueError(f"{what}: expected a float video (3, T, H, W) or uint8 frames (T, H, W, 3), "
                         f"got {getattr(video, 'dtype', None)} {tuple(video.shape)}")  # fmt: skip
    return to_uint8(video, channel_axis=0)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _text_size(font: ImageFont.ImageFont, text: str) -> tuple[int, int]:
    box = font.getbbox(text) if text else (0, 0, 0, 0)
    return int(box[2] - box[0]), int(box[3] - min(box[1], 0))


def _wrap(font: ImageFont.ImageFont, text: str, width: int) -> list[str]:
    """``text`` in lines no wider than ``width`` pixels: broken at spaces, and inside words that alone are wider."""
    lines: list[str] = []
    for word in text.split():
        while _text_size(font, word)[0] > width and len(word) > 1:  # a word wider than the cell: break it
            cut = max(1, max(k for k in range(1, len(word) + 1) if _text_size(font, word[:k])[0] <= width or k == 1))
            if lines and _text_size(font, f"{lines[-1]} {word[:cut]}")[0] <= width:
                lines[-1] = f"{lines[-1]} {word[:cut]}"
            else:
                lines.append(word[:cut])
            word = word[cut:]
        if lines and _text_size(font, f"{lines[-1]} {word}")[0] <= width:
            lines[-1] = f"{lines[-1]} {word}"
        elif word:
            lines.append(word)
    return lines or [""]


def _check_ext(path: Path) -> str:
    ext = path.suffix.lower()
    if ext not in VIDEO_EXTENSIONS:
        raise ValueError(f"{path}: unsupported extension {ext or '(none)'!r}; use one of {', '.join(VIDEO_EXTENSIONS)}")
    return ext


def _write_frames(path: Path, frames: np.ndarray, fps: float) -> None:
    """Write ``(T, H, W, 3)`` uint8 frames as mp4 or gif, or ``frames[0]`` as png (atomically)."""
    ext = _check_ext(path)

    def write(tmp: str) -> None:  # the temporary name says nothing about the format: name it
        if ext == ".gif":
            images = [Image.fromarray(f) for f in frames]
            duration = max(20, round(1000 / fps / 10) * 10)  # GIF delays are in 1/100 s
            images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0,
                           optimize=False)  # fmt: skip
        elif ext == ".mp4":
            _write_mp4(tmp, frames, fps)
        else:
            Image.fromarray(frames[0]).save(tmp, format="PNG", optimize=True)

    atomic_write(path, write)


def _write_mp4(path: str, frames: np.ndarray, fps: float) -> None:
    import av

    h, w = frames.shape[1:3]
    ph, pw = h + h % 2, w + w % 2
    if (ph, pw) != (h, w):
        frames = np.pad(frames, ((0, 0), (0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = pw, ph, "yuv420p"
        # one encoder thread: with several, libx264 gave different bytes for the same frames in 2 of 6 runs here.
        # Even with one it is not always bit-reproducible (about 1 run in 50 differed by a few levels in every
        # frame), so an mp4 regenerated from its latents file matches to within that rounding; .png and .gif
        # regenerate exactly
        stream.codec_context.thread_count = 1
        stream.options = {"crf": "18", "preset": "medium", "threads": "1"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def save_video(path: str | os.PathLike, frames: torch.Tensor | np.ndarray, fps: float = 8) -> Path:
    """Write one video.

    Args:
        path: output file; ``.mp4``, ``.gif`` or ``.png`` (a filmstrip of all frames along x).
        frames: float ``(3, T, H, W)`` in ``[-1, 1]`` or uint8 ``(T, H, W, 3)``.
        fps: frames per second (mp4, gif).

    Returns:
        The path written.
    """
    path = Path(path)
    _check_ext(path)
    video = _as_frames(frames, str(path))
    if path.suffix.lower() == ".png":
        strip = np.concatenate(list(video), axis=1)  # (H, T*W, 3)
        _write_frames(path, strip[None], fps)
    else:
        _write_frames(path, video, fps)
    return path


def _grid_cells(videos: torch.Tensor | np.ndarray | Sequence, rows: int | None,
                cols: int | None) -> list[list[np.ndarray]]:  # fmt: skip
    """Videos as a rows x cols nested list of uint8 ``(T, H, W, 3)`` arrays."""
    if isinstance(videos, (torch.Tensor, np.ndarray)):
        is_u8 = videos.dtype in (torch.uint8, np.uint8)
        if videos.ndim == 6:
            r, c = videos.shape[:2]
            flat = [videos[i, j] for i in range(r) for j in range(c)]
            if rows not in (None, r) or cols not in (None, c):
                raise ValueError(f"grid of shape {tuple(videos.shape[:2])} but rows={rows}, cols={cols}")
            rows, cols = r, c
        elif videos.ndim == 5:
            flat = list(videos)
        else:
            layout = "(N, T, H, W, 3) or (R, C, T, H, W, 3)" if is_u8 else "(N, 3, T, H, W) or (R, C, 3, T, H, W)"
            raise ValueError(f"videos must be {layout}, got shape {tuple(videos.shape)}")
        if is_u8 and isinstance(videos, torch.Tensor):
            flat = [v.numpy() for v in flat]
    else:
        flat = list(videos)
    if not flat:
        raise ValueError("no videos to show")
    n = len(flat)
    if rows is None and cols is None:
        cols = int(np.ceil(np.sqrt(n)))
    if rows is None:
        rows = int(np.ceil(n / cols))
    if cols is None:
        cols = int(np.ceil(n / rows))
    if rows * cols < n:
        raise ValueError(f"{n} videos do not fit a {rows}x{cols} grid")
    cells = [_as_frames(v, f"video {i}") for i, v in enumerate(flat)]
    t, h, w = cells[0].shape[:3]
    for i, c in enumerate(cells):
        if c.shape[1:3] != (h, w):
            raise ValueError(f"video {i} is {c.shape[1]}x{c.shape[2]}, video 0 is {h}x{w}")
        if c.shape[0] != t:  # hold the last frame of shorter videos
            cells[i] = np.concatenate([c, np.repeat(c[-1:], t - c.shape[0], 0)]) if c.shape[0] < t else c[:t]
    blank = np.full((t, h, w, 3), 255, np.uint8)
    cells += [blank] * (rows * cols - n)
    return [cells[r * cols : (r + 1) * cols] for r in range(rows)]


def _labels(labels: Sequence[str] | None, n: int, what: str) -> list[str]:
    if labels is None:
        return [""] * n
    if len(labels) != n:
        raise ValueError(f"{len(labels)} {what} labels for {n} {what}s")
    return [str(s) for s in labels]


def save_grid(path: str | os.PathLike, videos: torch.Tensor | np.ndarray | Sequence, rows: int | None = None,
              cols: int | None = None, row_labels: Sequence[str] | None = None,
              col_labels: Sequence[str] | None = None, fps: float = 8, title: str | None = None,
              font_size: int | None = None) -> Path:  # fmt: skip
    """Write a labelled grid of videos.

    ``.mp4`` / ``.gif``: an animated R x C grid, row labels in a left margin, column labels in a top
    margin, the title above. ``.png``: a filmstrip sheet, one row per grid cell in row-major order
    (frames along x), each labelled ``"<row label> | <column label>"`` in the left margin. Labels never
    cover pixels of the videos.

    Args:
        path: output file (``.mp4``, ``.gif`` or ``.png``).
        videos: a grid ``(R, C, 3, T, H, W)`` / a batch ``(N, 3, T, H, W)`` of floats in ``[-1, 1]``, the
            same in uint8 channels-last (``(R, C, T, H, W, 3)``, ``(N, T, H, W, 3)``), or a sequence of
            single videos in either convention. Shorter videos hold their last frame.
        rows: grid rows for a batch / sequence (default: from ``cols`` or near-square).
        cols: grid columns for a batch / sequence.
        row_labels: one label per row, or ``None``.
        col_labels: one label per column, or ``None``.
        fps: frames per second (mp4, gif).
        title: text above the grid.
        font_size: label font size in pixels (default: from the frame height, at least 10).

    Returns:
        The path written.
    """
    path = Path(path)
    ext = _check_ext(path)
    grid = _grid_cells(videos, rows, cols)
    n_rows, n_cols = len(grid), len(grid[0])
    r_lab, c_lab = _labels(row_labels, n_rows, "row"), _labels(col_labels, n_cols, "column")
    t, h, w = grid[0][0].shape[:3]
    font = _font(font_size or max(10, min(16, h // 5)))
    line = _text_size(font, "Ag")[1] + 4
    if ext == ".png":
        labels = [" | ".join(s for s in (r_lab[r], c_lab[c]) if s) for r in range(n_rows) for c in range(n_cols)]
        strips = [np.concatenate(list(cell), axis=1) for row in grid for cell in row]  # (H, T*W, 3) each
        canvas, left, top = _canvas(font, labels, [], line, title, len(strips), 1, h, t * w + (t - 1) * _GAP)
        for i, strip in enumerate(strips):
            y = top + i * (h + _GAP)
            for k in range(t):
                canvas[y : y + h, left + k * (w + _GAP) : left + k * (w + _GAP) + w] = strip[:, k * w : (k + 1) * w]
        _write_frames(path, _annotate(canvas, font, labels, [], title, left, top, h, 0, line)[None], fps)
        return path
    canvas, left, top = _canvas(font, r_lab, c_lab, line, title, n_rows, n_cols, h, w)
    frames = np.repeat(canvas[None], t, axis=0)
    for r in range(n_rows):
        for c in range(n_cols):
            y, x = top + r * (h + _GAP), left + c * (w + _GAP)
            frames[:, y : y + h, x : x + w] = grid[r][c]
    overlay = _annotate(canvas, font, r_lab, c_lab, title, left, top, h, w, line)
    mask = np.zeros(canvas.shape[:2], bool)
    mask[:top] = True
    mask[:, :left] = True
    frames[:, mask] = overlay[mask]
    _write_frames(path, frames, fps)
    return path


def _canvas(font: ImageFont.ImageFont, r_lab: list[str], c_lab: list[str], line: int, title: str | None,
            n_rows: int, n_cols: int, h: int, w: int) -> tuple[np.ndarray, int, int]:  # fmt: skip
    """A blank canvas for the cells plus label margins, and the cells' left / top offsets."""
    left = max((_text_size(font, s)[0] for s in r_lab), default=0)
    left = left + 6 if left else 0
    col_lines = max((len(_wrap(font, s, w)) for s in c_lab if s), default=0)
    top = col_lines * line + (line if title else 0)
    height = top + n_rows * h + (n_rows - 1) * _GAP
    width = left + n_cols * w + (n_cols - 1) * _GAP
    if title:
        width = max(width, _text_size(font, title)[0] + 4)
    return np.full((height, width, 3), _BG, np.uint8), left, top


def _annotate(canvas: np.ndarray, font: ImageFont.ImageFont, r_lab: list[str], c_lab: list[str], title: str | None,
              left: int, top: int, h: int, w: int, line: int) -> np.ndarray:  # fmt: skip
    """``canvas`` with the labels drawn in its margins."""
    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    if title:
        draw.text((2, 1), title, fill=_FG, font=font)
    y0 = line if title else 0
    for c, text in enumerate(c_lab):
        for k, part in enumerate(_wrap(font, text, w) if text else []):  # wrapped to the cell's width
            x = left + c * (w + _GAP) + max(0, (w - _text_size(font, part)[0]) // 2)
            draw.text((x, y0 + 1 + k * line), part, fill=_FG, font=font)
    for r, text in enumerate(r_lab):
        if text:
            y = top + r * (h + _GAP) + max(0, (h - line) // 2)
            draw.text((2, y), text, fill=_FG, font=font)
    return np.asarray(img)


def read_video(path: str | os.PathLike) -> np.ndarray:
    """Read a video written by this module (or any mp4 / gif) as uint8 ``(T, H, W, 3)``.

    A ``.png`` is returned as one frame. Meant for tests and inspection, not for datasets.
    """
    path = Path(path)
    ext = _check_ext(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if ext == ".mp4":
        import av

        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        return np.stack(frames)
    with Image.open(path) as img:
        frames = []
        for k in range(getattr(img, "n_frames", 1)):
            img.seek(k)
            frames.append(np.asarray(img.convert("RGB")))
    return np.stack(frames)
