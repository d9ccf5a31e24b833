"""The clip loader: shapes, pixel mapping, steps, flips, resizing, determinism, workers, short videos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from g3an.data.format import DatasetWriter, open_dataset
from g3an.data.loader import ClipDataset
from g3an.media import to_uint8

H, W = 8, 10


def _frames(video: int, n: int, h: int = H, w: int = W) -> np.ndarray:
    """Frames whose pixels encode (frame number, video, column) so any clip can be checked exactly."""
    out = np.empty((n, h, w, 3), np.uint8)
    out[..., 0] = np.arange(n, dtype=np.uint8)[:, None, None]
    out[..., 1] = 10 * video
    out[..., 2] = (np.arange(w, dtype=np.uint8) * 20)[None, None, :]
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("loader") / "ds"
    lengths = [64, 64, 20, 40, 10, 61, 64, 33]  # video 4 is too short for 16 frames
    with DatasetWriter(root, H, W, 25.0, "loader test", class_names=("x", "y", "z")) as w:
        for i, n in enumerate(lengths):
            w.add_video(_frames(i, n), label=i % 3, subject=f"s{i}", split="test" if i in (6, 7) else "train")
    return root


def _expected(ds: ClipDataset, item: int, epoch: int = 0) -> torch.Tensor:
    spec = ds.clip_spec(epoch, item)
    frames = ds.data.frames(spec.video)[spec.frame_indices(ds.num_frames)]
    if spec.flip:
        frames = frames[:, :, ::-1]
    return torch.from_numpy(frames.astype(np.float32) / 127.5 - 1).permute(3, 0, 1, 2)


def test_items_shapes_labels_and_exact_pixels(dataset: Path) -> None:
    with pytest.warns(UserWarning, match="1 of 8 videos are shorter than a 16-frame clip"):
        ds = ClipDataset(dataset)
    assert len(ds) == 7 and ds.skipped == 1 and 4 not in ds.indices.tolist() and ds.classes == ("x", "y", "z")
    for i in range(len(ds)):
        item = ds[i]
        assert item["video"].shape == (3, 16, H, W) and item["video"].dtype == torch.float32
        assert item["label"].dtype == torch.int64 and item["index"].dtype == torch.int64
        vid = int(item["index"])
        assert vid == ds.indices[i] and int(item["label"]) == vid % 3
        assert torch.equal(item["video"], _expected(ds, i))
        assert item["video"].min() >= -1 and item["video"].max() <= 1


def test_pixel_mapping_inverts_media_rule(tmp_path: Path) -> None:
    values = np.arange(256, dtype=np.uint8)
    frames = np.broadcast_to(values.reshape(1, 16, 16, 1), (2, 16, 16, 3)).copy()
    with DatasetWriter(tmp_path / "ds", 16, 16, 25.0, "ramp") as w:
        w.add_video(frames)
    video = ClipDataset(tmp_path / "ds", num_frames=2, steps=(1,))[0]["video"]
    assert video.min() == -1 and video.max() == 1
    assert torch.equal(video[0, 0].flatten(), torch.from_numpy(values.astype(np.float32) / 127.5 - 1))
    assert np.array_equal(to_uint8(video), frames)


def test_steps_are_drawn_from_the_set_and_fall_back_on_short_videos(dataset: Path) -> None:
    with pytest.warns(UserWarning):
        ds = ClipDataset(dataset, steps=(1, 2, 3, 4), seed=5)
    seen: dict[int, set[int]] = {}
    for epoch in range(30):
        for i in range(len(ds)):
            spec = ds.clip_spec(epoch, i)
            n = ds.data.videos[spec.video].num_frames
            assert spec.step in (1, 2, 3, 4) and spec.start + 15 * spec.step < n
            seen.setdefault(n, set()).add(spec.step)
    assert seen[64] == {1, 2, 3, 4}  # a long video gets every step
    assert seen[20] == {1}  # only step 1 fits 20 frames
    assert seen[40] == {1, 2}  # 40 frames: steps 3 and 4 fall back to 2
    assert seen[33] == {1, 2}
    with pytest.warns(UserWarning):
        only = ClipDataset(dataset, steps=(2, 3), seed=5)
    assert {only.clip_spec(0, i).step for i in range(len(only))} <= {2, 3}
    assert only.skipped == 2  # 10 and 20 frames cannot hold 16 frames at step 2


def test_flip_mirrors_every_frame_alike(dataset: Path) -> None:
    with pytest.warns(UserWarning):
        ds = ClipDataset(dataset, flip=True, seed=1)
    flips = [ds.clip_spec(e, i).flip for e in range(4) for i in range(len(ds))]
    assert 0.25 < np.mean(flips) < 0.75
    for e in range(4):
        for i in range(len(ds)):
            spec = ds.clip_spec(e, i)
            video = ds[(e, i)]["video"]
            assert torch.equal(video, _expected(ds, i, e))
            left = video[2, :, :, 0]  # channel 2 encodes the stored column: column 0 on the left unless flipped
            assert bool((left == torch.tensor(20.0 * (W - 1)).div(127.5).sub(1)).all()) == spec.flip


def test_determinism_epochs_and_keys(dataset: Path) -> None:
    with pytest.warns(UserWarning):
        a, b, c = ClipDataset(dataset, seed=3), ClipDataset(dataset, seed=3), ClipDataset(dataset, seed=4)
    specs = [a.clip_spec(0, i) for i in range(len(a))]
    assert specs == [b.clip_spec(0, i) for i in range(len(b))]
    assert specs != [c.clip_spec(0, i) for i in range(len(c))]
    assert specs != [a.clip_spec(1, i) for i in range(len(a))]
    a.set_epoch(1)
    assert torch.equal(a[2]["video"], b[(1, 2)]["video"])


def test_dataloader_workers_and_distributed_sampler_see_the_same_clips(dataset: Path) -> None:
    with pytest.warns(UserWarning):
        ds = ClipDataset(dataset, flip=True, seed=7)
    ds.set_epoch(2)
    ref = torch.stack([ds[i]["video"] for i in range(len(ds))])
    batches = list(DataLoader(ds, batch_size=3, num_workers=2))
    assert torch.equal(torch.cat([b["video"] for b in batches]), ref)
    got = {}
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=0)
        sampler.set_epoch(2)
        for batch in DataLoader(ds, batch_size=2, sampler=sampler):
            for idx, video in zip(batch["index"].tolist(), batch["video"]):
                got[idx] = video
    assert sorted(got) == sorted(ds.indices.tolist())
    for i, idx in enumerate(ds.indices.tolist()):
        assert torch.equal(got[idx], ref[i])


def test_resize_and_center_crop(tmp_path: Path) -> None:
    frames = np.zeros((16, 12, 20, 3), np.uint8)  # 12 x 20: wider than tall
    frames[:, :, 8:12] = 255  # a centred white band 4 px wide
    frames[:, :, :2] = 128  # columns cropped away at the left
    with DatasetWriter(tmp_path / "ds", 12, 20, 25.0, "band") as w:
        w.add_video(frames)
    video = ClipDataset(tmp_path / "ds", size=6, steps=(1,))[0]["video"]
    assert video.shape == (3, 16, 6, 6)
    row = video[0, 0, 3]
    assert row[2:4].min() > 0.5 and row[0] == -1 and row[-1] == -1  # band kept in the middle, edges cropped
    assert torch.equal(video[:, 0], video[:, -1])
    tall = ClipDataset(tmp_path / "ds", size=(10, 4), steps=(1,))[0]["video"]
    assert tall.shape == (3, 16, 10, 4)


def test_split_and_errors(dataset: Path) -> None:
    test = ClipDataset(dataset, split="test")
    assert sorted(test.indices.tolist()) == [6, 7] and test.skipped == 0
    with pytest.raises(ValueError, match="no video of split 'train' has enough frames"), pytest.warns(UserWarning):
        ClipDataset(dataset, split="train", num_frames=100)
    with pytest.raises(ValueError, match="steps must be positive"):
        ClipDataset(dataset, steps=(0, 1))
    with pytest.raises(IndexError):
        test[5]
    assert len(ClipDataset(open_dataset(dataset), split="test")) == 2
