"""The prepared dataset format: round trip, hashes, atomic and resumable writes, validation errors."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from g3an.data.format import FORMAT_VERSION, DatasetError, DatasetWriter, open_dataset


def _video(seed: int, frames: int, h: int = 6, w: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, h, w, 3), dtype=np.uint8)


def _write(path: Path, videos: list[np.ndarray], **kw) -> None:
    with DatasetWriter(path, 6, 5, 25.0, "unit test", class_names=("a", "b"), **kw) as w:
        for i, v in enumerate(videos):
            w.add_video(v, label=i % 2, subject=f"s{i // 2}", split="test" if i == 0 else "train",
                        factors={"k": i, "f": np.float32(0.5)}, source=f"v{i}.mp4")  # fmt: skip


@pytest.fixture
def videos() -> list[np.ndarray]:
    return [_video(i, n) for i, n in enumerate((3, 7, 1, 4))]


def test_round_trip(tmp_path: Path, videos: list[np.ndarray]) -> None:
    _write(tmp_path / "ds", videos)
    ds = open_dataset(tmp_path / "ds", verify=True)
    assert len(ds) == 4 and ds.classes == ("a", "b") and ds.fps == 25.0 and (ds.height, ds.width) == (6, 5)
    for i, v in enumerate(videos):
        assert np.array_equal(ds.frames(i), v)
        rec = ds.videos[i]
        assert (rec.id, rec.label, rec.subject, rec.num_frames) == (f"{i:06d}", i % 2, f"s{i // 2}", len(v))
        assert rec.factors == {"k": i, "f": 0.5} and rec.source == f"v{i}.mp4"
    assert ds.split("train") == [1, 2, 3] and ds.split("test") == [0] and ds.split(None) == [0, 1, 2, 3]
    assert ds.splits() == {"test": 1, "train": 3}
    with pytest.raises(DatasetError, match="no video in split 'val'"):
        ds.split("val")
    # one uint8 array, readable without g3an
    frames = np.load(tmp_path / "ds" / "frames.npy", mmap_mode="r")
    assert frames.shape == (15, 6, 5, 3) and np.array_equal(frames[3:10], videos[1])
    assert not ds.frames(1).flags.writeable
    meta = json.loads((tmp_path / "ds" / "meta.json").read_text())
    assert meta["format"] == "g3an-prepared-video" and meta["version"] == FORMAT_VERSION


def test_content_hash_covers_frames_and_labels_only(tmp_path: Path, videos: list[np.ndarray]) -> None:
    _write(tmp_path / "a", videos)
    _write(tmp_path / "b", videos, attributes={"note": "attributes are not hashed"})
    h = open_dataset(tmp_path / "a").content_hash
    assert open_dataset(tmp_path / "b").content_hash == h
    changed = [v.copy() for v in videos]
    changed[2][0, 0, 0, 0] ^= 1
    _write(tmp_path / "c", changed)
    assert open_dataset(tmp_path / "c").content_hash != h
    with DatasetWriter(tmp_path / "d", 6, 5, 25.0, "unit test", class_names=("a", "b")) as w:
        for i, v in enumerate(videos):
            w.add_video(v, label=(i + 1) % 2, subject=f"s{i // 2}", split="test" if i == 0 else "train",
                        factors={"k": i, "f": 0.5})  # fmt: skip
    assert open_dataset(tmp_path / "d").content_hash != h


def test_verify_detects_corrupt_frames(tmp_path: Path, videos: list[np.ndarray]) -> None:
    _write(tmp_path / "ds", videos)
    path = tmp_path / "ds" / "frames.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    open_dataset(tmp_path / "ds")  # sizes still agree
    with pytest.raises(DatasetError, match="do not match the SHA-256"):
        open_dataset(tmp_path / "ds", verify=True)


def test_interrupted_write_leaves_nothing_that_opens(tmp_path: Path, videos: list[np.ndarray]) -> None:
    out = tmp_path / "ds"
    with pytest.raises(RuntimeError, match="boom"), DatasetWriter(out, 6, 5, 25.0, "x") as w:
        w.add_video(videos[0])
        raise RuntimeError("boom")
    assert not out.exists() and (tmp_path / "ds.partial").is_dir()
    with pytest.raises(DatasetError, match="a writer was interrupted"):
        open_dataset(out)
    with pytest.raises(DatasetError, match="unfinished"):
        open_dataset(tmp_path / "ds.partial")
    w = DatasetWriter(out, 6, 5, 25.0, "x")  # without resume: starts afresh
    assert len(w) == 0
    w.abort()
    assert not (tmp_path / "ds.partial").exists()


def test_resume_continues_and_matches_an_uninterrupted_write(tmp_path: Path, videos: list[np.ndarray]) -> None:
    _write(tmp_path / "ref", videos)
    out = tmp_path / "ds"
    w = DatasetWriter(out, 6, 5, 25.0, "unit test", class_names=("a", "b"))
    for i, v in enumerate(videos[:3]):
        w.add_video(v, label=i % 2, subject=f"s{i // 2}", split="test" if i == 0 else "train",
                    factors={"k": i, "f": 0.5}, source=f"v{i}.mp4")  # fmt: skip
    w.close()
    partial = tmp_path / "ds.partial"
    # a crash in the middle of the third video: half its frames written, its journal line torn
    journal = (partial / "journal.jsonl").read_text().splitlines()
    (partial / "journal.jsonl").write_text("\n".join(journal[:-1]) + "\n" + journal[-1][:20])
    with open(partial / "frames.npy", "r+b") as f:
        f.truncate(f.seek(0, 2) - 30)
    w = DatasetWriter(out, 6, 5, 25.0, "unit test", class_names=("a", "b"), resume=True)
    assert len(w) == 2 and w.has("000001") and not w.has("000002")
    for i, v in enumerate(videos):
        if not w.has(f"{i:06d}"):
            w.add_video(v, label=i % 2, subject=f"s{i // 2}", split="test" if i == 0 else "train",
                        factors={"k": i, "f": 0.5}, source=f"v{i}.mp4")  # fmt: skip
    ds = w.finalize()
    assert ds.content_hash == open_dataset(tmp_path / "ref").content_hash
    assert ds.meta["frames_sha256"] == open_dataset(tmp_path / "ref").meta["frames_sha256"]
    assert not partial.exists()
    # other settings: the partial directory is not reused
    w = DatasetWriter(tmp_path / "other", 6, 5, 25.0, "x")
    w.add_video(videos[0])
    w.close()
    w = DatasetWriter(tmp_path / "other", 6, 5, 30.0, "x", resume=True)
    assert len(w) == 0
    w.abort()


def test_writer_rejects_bad_input(tmp_path: Path) -> None:
    w = DatasetWriter(tmp_path / "ds", 6, 5, 25.0, "x", class_names=("a",))
    with pytest.raises(ValueError, match=r"uint8 \(T, 6, 5, 3\)"):
        w.add_video(np.zeros((2, 5, 6, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        w.add_video(np.zeros((2, 6, 5, 3), np.float32))
    with pytest.raises(ValueError, match="at least one frame"):
        w.add_video(np.zeros((0, 6, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="label 1 out of range"):
        w.add_video(np.zeros((2, 6, 5, 3), np.uint8), label=1)
    with pytest.raises(ValueError, match="plain JSON"):
        w.add_video(np.zeros((2, 6, 5, 3), np.uint8), factors={"x": object()})
    w.add_video(np.zeros((2, 6, 5, 3), np.uint8), id="v")
    with pytest.raises(ValueError, match="duplicate video id 'v'"):
        w.add_video(np.zeros((2, 6, 5, 3), np.uint8), id="v")
    w.finalize()
    with pytest.raises(FileExistsError, match="already exists"):
        DatasetWriter(tmp_path / "ds", 6, 5, 25.0, "x")
    with DatasetWriter(tmp_path / "ds", 6, 5, 25.0, "new", overwrite=True) as w:
        w.add_video(np.ones((3, 6, 5, 3), np.uint8))
    ds = open_dataset(tmp_path / "ds")
    assert ds.source == "new" and len(ds) == 1 and not (tmp_path / "ds.old").exists()


def _corrupt(root: Path, edit) -> None:
    meta = json.loads((root / "meta.json").read_text())
    edit(meta)
    (root / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda r: (r / "meta.json").unlink(), "meta.json: missing"),
        (lambda r: (r / "meta.json").write_text("{not json"), "not valid JSON"),
        (lambda r: _corrupt(r, lambda m: m.update(format="something-else")), "not a g3an-prepared-video dataset"),
        (lambda r: _corrupt(r, lambda m: m.update(version=FORMAT_VERSION + 1)), "newer than this g3an reads"),
        (lambda r: _corrupt(r, lambda m: m.pop("videos")), "missing key 'videos'"),
        (lambda r: _corrupt(r, lambda m: m["videos"][1].update(label=5)), "has label 5 but there are 2 classes"),
        (lambda r: _corrupt(r, lambda m: m["videos"][1].update(offset=4)), "expected to start at 3"),
        (lambda r: _corrupt(r, lambda m: m["videos"][1].update(colour="red")), "video record 1 is malformed"),
        (lambda r: (r / "frames.npy").unlink(), "missing frames file"),
        (lambda r: (r / "frames.npy").write_bytes((r / "frames.npy").read_bytes()[:-7]), "truncated"),
        (lambda r: (r / "frames.npy").write_bytes((r / "frames.npy").read_bytes() + b"x"), "longer than expected"),
        (lambda r: (r / "frames.npy").write_bytes(b"garbage"), "not a .npy file"),
    ],
)
def test_open_rejects_broken_datasets(tmp_path: Path, videos: list[np.ndarray], breakage, message: str) -> None:
    root = tmp_path / "ds"
    _write(root, videos)
    breakage(root)
    with pytest.raises(DatasetError, match=message) as err:
        open_dataset(root)
    assert str(root) in str(err.value)


def test_open_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such dataset directory") as err:
        open_dataset(tmp_path / "nope")
    assert isinstance(err.value, ValueError) and str(tmp_path / "nope") in str(err.value)


def test_pickling_drops_the_memory_map(tmp_path: Path) -> None:
    with DatasetWriter(tmp_path / "ds", 64, 64, 25.0, "x") as w:
        w.add_video(np.zeros((40, 64, 64, 3), np.uint8))
    ds = open_dataset(tmp_path / "ds")
    ds.frames(0)
    blob = pickle.dumps(ds)
    assert len(blob) < 10_000  # the 490 KB of frames are not copied into worker processes
    assert np.array_equal(pickle.loads(blob).frames(0), ds.frames(0))
