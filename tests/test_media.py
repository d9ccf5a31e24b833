"""Media writing: the (x + 1) / 2 rule, layouts, lossless png, gif / mp4 round trips, labelled grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from g3an.media import read_video, save_grid, save_video, to_uint8


def _videos(n: int, t: int = 5, h: int = 12, w: int = 14, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, t, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_to_uint8_rounds_and_clamps_never_rescales() -> None:
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, float("nan")]).view(1, 1, 8).expand(3, 2, 1, 8)
    out = to_uint8(x)  # (3, T, H, W) -> (T, H, W, 3)
    assert out.shape == (2, 1, 8, 3) and out.dtype == np.uint8
    assert out[0, 0, :, 0].tolist() == [0, 0, 64, 128, 191, 255, 255, 128]
    narrow = torch.full((3, 2, 4, 4), 0.25)
    assert (to_uint8(narrow) == 159).all()  # a narrow range stays narrow: no per-batch min-max
    u8 = np.arange(256, dtype=np.uint8)
    assert np.array_equal(
        to_uint8(torch.from_numpy(u8 / 127.5 - 1).float().view(1, 1, 256).expand(3, 1, 1, 256))[0, 0, :, 0], u8
    )


def test_to_uint8_layouts() -> None:
    assert to_uint8(torch.zeros(2, 3, 4, 5, 6)).shape == (2, 4, 5, 6, 3)  # batch of videos
    assert to_uint8(torch.zeros(2, 4, 3, 5, 6)).shape == (2, 4, 5, 6, 3)  # grid of images (R, C, 3, H, W)
    assert to_uint8(torch.zeros(2, 3, 4, 5, 6), channel_axis=1).shape == (2, 4, 5, 6, 3)
    with pytest.raises(ValueError, match="ambiguous"):
        to_uint8(torch.zeros(3, 3, 5, 6))
    with pytest.raises(ValueError, match="3 channels"):
        to_uint8(torch.zeros(4, 4, 5, 6))


def test_png_filmstrip_is_lossless(tmp_path: Path) -> None:
    video = _videos(1)[0]
    path = save_video(tmp_path / "v.png", video)
    strip = read_video(path)[0]
    assert np.array_equal(strip, np.concatenate(list(to_uint8(video)), axis=1))


@pytest.mark.parametrize(("ext", "tol"), [(".gif", 12.0), (".mp4", 12.0)])
def test_animated_round_trip(tmp_path: Path, ext: str, tol: float) -> None:
    frames = np.zeros((6, 33, 35, 3), np.uint8)  # odd sizes: mp4 pads to even
    for t in range(6):
        frames[t, :, 5 * t : 5 * t + 8] = (250, 40, 40)
        frames[t, 20:] = (40, 200, 60)
    save_video(tmp_path / f"v{ext}", frames, fps=10)
    back = read_video(tmp_path / f"v{ext}")
    assert back.shape[0] == 6 and back.dtype == np.uint8
    assert back.shape[1:3] == ((34, 36) if ext == ".mp4" else (33, 35))
    err = np.abs(back[:, :33, :35].astype(float) - frames).mean()
    assert err < tol, err
    assert [p.name for p in tmp_path.iterdir()] == [f"v{ext}"]  # no temporary file left


def test_grid_places_every_clip_unobscured(tmp_path: Path) -> None:
    grid = torch.stack([_videos(3, seed=r) for r in range(2)])  # (R, C, 3, T, H, W)
    plain = read_video(save_grid(tmp_path / "g.gif", grid))
    assert plain.shape[:3] == (5, 2 * 12 + 2, 3 * 14 + 4)
    sheet = read_video(save_grid(tmp_path / "g.png", grid, row_labels=["a", "b"], col_labels=["x", "y", "z"],
                                 title="title"))[0]  # fmt: skip
    t, h, w = 5, 12, 14
    strip_w = t * w + (t - 1) * 2
    left, top = sheet.shape[1] - strip_w, sheet.shape[0] - 6 * h - 5 * 2
    assert left > 0 and top > 0  # margins hold the labels
    for r in range(2):
        for c in range(3):
            y = top + (3 * r + c) * (h + 2)
            cells = to_uint8(grid[r, c])
            for k in range(t):
                x = left + k * (w + 2)
                assert np.array_equal(sheet[y : y + h, x : x + w], cells[k])
    assert (sheet[:top] < 128).any() and (sheet[top:, :left] < 128).any()  # label text was drawn


def test_grid_from_uint8_batch_with_labels(tmp_path: Path) -> None:
    frames = np.random.default_rng(0).integers(0, 256, (5, 4, 10, 10, 3), dtype=np.uint8)
    out = read_video(save_grid(tmp_path / "g.gif", frames, cols=3, row_labels=["r0", "r1"], col_labels=list("abc")))
    assert out.shape[0] == 4
    with pytest.raises(ValueError, match="2 row labels for 1 rows"):
        save_grid(tmp_path / "h.gif", frames[:3], cols=3, row_labels=["a", "b"])
    with pytest.raises(ValueError, match="do not fit"):
        save_grid(tmp_path / "h.gif", frames, rows=2, cols=2)


def test_unsupported_extension_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"clip\.avi: unsupported extension"):
        save_video(tmp_path / "clip.avi", _videos(1)[0])
    with pytest.raises(ValueError, match="unsupported extension"):
        save_grid(tmp_path / "grid", _videos(2))


def test_column_labels_wider_than_their_cell_wrap_inside_it(tmp_path: Path) -> None:
    # 32-pixel cells (the shipped models' size) under labels far wider than a cell: each label is wrapped
    # onto more lines of the top margin, so no label pixel lies above a neighbouring cell or a gap.
    videos = torch.zeros(1, 4, 3, 2, 32, 32)
    labels = ["appearance #3", "jumping jack", "supercalifragilistic", "+1.50"]
    out = read_video(save_grid(tmp_path / "g.gif", videos, col_labels=labels))[0]
    top = out.shape[0] - 32
    assert top >= 3 * 12  # three lines for the longest labels
    margin = out[:top].min(axis=2) < 128  # label ink
    for c in range(4):
        gap = slice(c * 34 + 32, c * 34 + 34)
        assert not margin[:, gap].any(), f"label ink above the gap after column {c}"
        assert margin[:, c * 34 : c * 34 + 32].any(), f"no label drawn above column {c}"
