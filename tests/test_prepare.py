"""``g3an data prepare``: real encoded videos in each dataset's raw layout, skips, crops, restart, training."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import multiprocessing
import os
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from g3an.data.format import open_dataset
from g3an.data.prepare import Preprocess, prepare_dataset, scan
from g3an.data.prepare import common as prepare_common
from g3an.data.prepare import face as face_mod
from g3an.data.prepare.common import (
    SkipError,
    VideoItem,
    decode_video,
    natural_key,
    read_frame_folder,
    resize_frames,
    scale_center_crop,
    short_side_center_crop,
)
from g3an.data.prepare.face import crop_boxes, smooth_boxes
from g3an.data.prepare.weizmann import parse_name

H, W = 48, 64


# -- helpers -----------------------------------------------------------------------------------------
def _moving(t: int, h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    """A smooth moving pattern (compresses well, so decoded frames stay close to it)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 2 * np.pi, 3)
    frames = np.empty((t, h, w, 3), np.uint8)
    for i in range(t):
        for c in range(3):
            frames[i, :, :, c] = 127 + 100 * np.sin(xx / 7 + yy / 11 + base[c] + 0.3 * i)
    return frames


def write_video(path: Path, frames: np.ndarray, codec: str = "mpeg4", pix_fmt: str = "yuv420p", fps: int = 25) -> Path:
    """Encode ``frames`` ((T, H, W, 3) RGB or (T, H, W) gray) with PyAV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height = frames.shape[2], frames.shape[1]
        s.pix_fmt = pix_fmt
        if codec in ("mpeg4", "mjpeg"):
            s.options = {"qscale": "2"} if codec == "mpeg4" else {}
            s.codec_context.qmin, s.codec_context.qmax = 1, 3
        for f in frames:
            vf = av.VideoFrame.from_ndarray(f, format="gray" if f.ndim == 2 else "rgb24")
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def write_frames(folder: Path, frames: np.ndarray, ext: str = "jpg", start: int = 1) -> Path:
    """Frames as ``img_1.jpg, img_2.jpg, ...`` (not zero-padded: the natural sort must order them)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"img_{start + i}.{ext}", quality=95)
    return folder


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(p.relative_to(root).as_posix().encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def _face_frame(cx: float, cy: float, s: float = 60, h: int = 120, w: int = 160) -> np.ndarray:
    """A drawn face that OpenCV's frontal-face Haar cascade detects."""
    im = Image.new("RGB", (w, h), (40, 60, 80))
    d = ImageDraw.Draw(im)
    fw = s * 0.8
    d.ellipse([cx - fw / 2, cy - s / 2, cx + fw / 2, cy + s / 2], fill=(220, 180, 150))
    ey, ex, erx, ery = cy - s * 0.12, fw * 0.22, s * 0.09, s * 0.05
    for sx in (-1, 1):
        d.ellipse([cx + sx * ex - erx * 1.3, ey - s * 0.12 - ery * 0.6, cx + sx * ex + erx * 1.3,
                   ey - s * 0.12 + ery * 0.6], fill=(60, 40, 30))  # fmt: skip
        d.ellipse([cx + sx * ex - erx, ey - ery, cx + sx * ex + erx, ey + ery], fill=(30, 20, 20))
    d.polygon([(cx, ey + 2), (cx - s * 0.06, cy + s * 0.12), (cx + s * 0.06, cy + s * 0.12)], fill=(200, 150, 120))
    d.ellipse([cx - s * 0.15, cy + s * 0.22, cx + s * 0.15, cy + s * 0.30], fill=(120, 40, 40))
    return np.asarray(im.filter(ImageFilter.GaussianBlur(2)))


def _face_video(t: int, blank: tuple[int, ...] = ()) -> np.ndarray:
    """A face drifting right; frames in ``blank`` show only the background (detector failures)."""
    frames = np.stack([_face_frame(70 + i, 60) for i in range(t)])
    for i in blank:
        frames[i] = frames[i, 0, 0]
    return frames


def _bad_files(folder: Path, stem_of: dict[str, str]) -> None:
    """Corrupt (truncated mp4), garbage, empty and too-short videos named by ``stem_of``."""
    good = write_video(folder / "tmp_full.mp4", _moving(20), "libx264")
    data = good.read_bytes()
    good.unlink()
    (folder / f"{stem_of['corrupt']}.mp4").write_bytes(data[: len(data) // 2])
    (folder / f"{stem_of['garbage']}.avi").write_bytes(b"RIFF\x00\x00\x00\x00AVI garbage" * 50)
    (folder / f"{stem_of['empty']}.avi").write_bytes(b"")
    write_video(folder / f"{stem_of['short']}.avi", _moving(5), "mjpeg", "yuvj420p")


# -- decoding ----------------------------------------------------------------------------------------
def test_decode_containers_gray_odd_and_frame_folders(tmp_path: Path) -> None:
    frames = _moving(24)
    cases = {
        "a.avi": ("mpeg4", "yuv420p", frames),
        "b.avi": ("mjpeg", "yuvj420p", frames),
        "c.mp4": ("libx264", "yuv420p", frames),
        "gray.mkv": ("ffv1", "gray", frames[..., 1]),
        "odd.mov": ("libx264", "yuv444p", _moving(24, 37, 51)),
        "odd.avi": ("mjpeg", "yuvj444p", _moving(24, 37, 51)),
    }
    for name, (codec, pix, fr) in cases.items():
        out, fps = decode_video(write_video(tmp_path / name, fr, codec, pix, fps=12))
        assert out.dtype == np.uint8 and out.shape == (24, *fr.shape[1:3], 3), name
        assert fps == pytest.approx(12)
        ref = fr if fr.ndim == 4 else np.repeat(fr[..., None], 3, axis=-1)
        assert np.abs(out.astype(int) - ref).mean() < 12, name
    full, _ = decode_video(tmp_path / "a.avi")
    part, _ = decode_video(tmp_path / "a.avi", max_frames=5, step=2, transform=lambda f: f[:10, :20])
    assert np.array_equal(part, full[:10:2, :10, :20])
    gray, _ = decode_video(tmp_path / "gray.mkv")
    assert np.array_equal(gray[..., 0], gray[..., 2])  # gray stream -> equal RGB channels

    _bad_files(tmp_path, {"corrupt": "corrupt", "garbage": "garbage", "empty": "empty", "short": "short"})
    for name, reason in (("corrupt.mp4", "unreadable"), ("garbage.avi", "unreadable"), ("empty.avi", "empty")):
        with pytest.raises(SkipError) as err:
            decode_video(tmp_path / name)
        assert err.value.reason == reason, (name, err.value)

    write_frames(tmp_path / "clip", frames[:12])
    (tmp_path / "clip" / "notes.txt").write_text("ignored")
    got = read_frame_folder(tmp_path / "clip")
    assert got.shape == (12, H, W, 3)
    assert np.abs(got.astype(int) - frames[:12]).mean() < 8  # img_2 before img_10: natural order
    (tmp_path / "clip" / "img_13.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(SkipError, match=r"img_13\.jpg"):
        read_frame_folder(tmp_path / "clip")
    assert sorted(["f10", "f2", "f1"], key=natural_key) == ["f1", "f2", "f10"]


def test_crop_geometry() -> None:
    frames = _moving(2, 240, 320)
    out = scale_center_crop(frames, 64, 85)
    assert out.shape == (2, 64, 64, 3)
    full = np.asarray(Image.fromarray(frames[0]).resize((85, 64), Image.Resampling.BILINEAR))
    assert np.array_equal(out[0], full[:, 10:74])
    assert short_side_center_crop(_moving(2, 37, 51), 32).shape == (2, 32, 32, 3)
    assert short_side_center_crop(_moving(2, 51, 37), 32).shape == (2, 32, 32, 3)


# -- Weizmann ----------------------------------------------------------------------------------------
def test_weizmann_names() -> None:
    assert parse_name("daria_walk") == ("daria", "walk", 0)
    assert parse_name("lena_run2") == ("lena", "run", 2)
    assert parse_name("daria_wave1") == ("daria", "wave1", 0)
    assert parse_name("shahar_pjump") == ("shahar", "pjump", 0)
    assert parse_name("readme") is None


def test_weizmann_labels_flip_skips_and_source_untouched(tmp_path: Path) -> None:
    src = tmp_path / "weizmann"
    write_video(src / "daria_walk.avi", _moving(30, seed=1), "mjpeg", "yuvj420p")
    write_video(src / "daria_wave1.avi", _moving(24, seed=2), "mpeg4")
    write_video(src / "lena_run1.avi", _moving(20, seed=3), "mpeg4")
    write_video(src / "lena_run2.avi", _moving(22, 37, 51, seed=4), "mjpeg", "yuvj444p")  # odd size
    write_video(src / "ido_jump.avi", _moving(18, seed=5)[..., 0], "ffv1", "gray")  # grayscale
    _bad_files(src, {"corrupt": "eli_bend", "garbage": "eli_side", "empty": "ira_skip", "short": "ira_jack"})
    (src / "readme.avi").write_bytes(b"x")
    (src / "notes.doc").write_bytes(b"x")
    (src / "walk.zip").write_bytes(b"PK")
    whole = write_video(tmp_path / "whole.avi", _moving(40, seed=6), "mpeg4").read_bytes()
    (src / "moshe_skip.avi").write_bytes(whole[: int(len(whole) * 0.9)])  # truncated: usable, with a warning
    damaged = bytearray(whole)
    at = damaged.index(b"00dc", damaged.index(b"movi"))  # the first video chunk
    for _ in range(9):
        at = damaged.index(b"00dc", at + 1)
    damaged[at + 8 : at + 24] = bytes(16)  # the 10th frame's header zeroed
    (src / "moshe_side.avi").write_bytes(bytes(damaged))  # decoding fails part-way: corrupt
    before = tree_digest(src)

    res = prepare_dataset("weizmann", src, tmp_path / "out", size=32, flip=True, test_subjects=["lena"], progress=False)
    assert tree_digest(src) == before
    ds = open_dataset(tmp_path / "out", verify=True)
    assert ds.classes == ("bend", "jack", "jump", "pjump", "run", "side", "skip", "walk", "wave1", "wave2")
    ids = [v.id for v in ds.videos]
    assert ids == ["daria_walk", "daria_walk_flip", "daria_wave1", "daria_wave1_flip", "ido_jump", "ido_jump_flip",
                   "lena_run1", "lena_run1_flip", "lena_run2", "lena_run2_flip", "moshe_skip",
                   "moshe_skip_flip"]  # fmt: skip
    by_id = {v.id: (i, v) for i, v in enumerate(ds.videos)}
    i, v = by_id["lena_run2"]
    assert (v.label, v.subject, v.num_frames, v.factors) == (4, "lena", 22, {"action": "run", "repetition": 2})
    assert by_id["daria_wave1"][1].label == 8 and by_id["daria_walk"][1].num_frames == 30
    j, vf = by_id["lena_run2_flip"]
    assert vf.factors["flipped"] is True and np.array_equal(ds.frames(j), ds.frames(i)[:, :, ::-1])
    assert {v.id: v.split for v in ds.videos if v.split == "test"}.keys() == {
        "lena_run1", "lena_run1_flip", "lena_run2", "lena_run2_flip"}  # fmt: skip
    assert ds.splits() == {"train": 8, "test": 4}
    with pytest.raises(ValueError, match="no video"):
        prepare_dataset("weizmann", src, tmp_path / "x", test_subjects=["nobody"], progress=False)
    k, _ = by_id["ido_jump"]
    gray = ds.frames(k)
    assert np.array_equal(gray[..., 0], gray[..., 1])
    decoded, _ = decode_video(src / "daria_walk.avi")
    assert np.array_equal(ds.frames(by_id["daria_walk"][0]), scale_center_crop(decoded, 32, round(32 * 85 / 64)))

    report = json.loads(res.report_path.read_text())
    assert res.report_path == tmp_path / "out" / "prepare_report.json"
    reasons = {s["path"]: s["reason"] for s in report["skipped"]}
    assert reasons == {"eli_bend.mp4": "unreadable", "eli_side.avi": "unreadable", "ira_skip.avi": "empty",
                       "ira_jack.avi": "too_short", "readme.avi": "unrecognised_name",
                       "notes.doc": "not_a_video", "moshe_side.avi": "corrupt", "walk.zip": "not_a_video"}  # fmt: skip
    assert report["written"] == 12 and report["skipped_by_reason"]["unreadable"] == 2
    assert [w["id"] for w in report["warnings"]] == ["moshe_skip"]
    assert "decoding failed after" in next(x["detail"] for x in report["skipped"] if x["path"] == "moshe_side.avi")
    assert "frames the container declares" in report["warnings"][0]["detail"]
    assert 16 <= by_id["moshe_skip"][1].num_frames < 40
    text = res.summary()
    assert "walk.zip: not_a_video (an archive: extract it first)" in text
    assert "skipped 8" in text and "too_short 1" in text and "prepare_report.json" in text
    assert "1 videos stored with a warning" in text


# -- UCF101 ------------------------------------------------------------------------------------------
def _ucf_tree(src: Path, with_lists: bool = True) -> None:
    for cls, fname_cls in (("ApplyEyeMakeup", "ApplyEyeMakeup"), ("HandstandPushups", "HandStandPushups")):
        for g in (1, 8):
            write_video(src / "UCF-101" / cls / f"v_{fname_cls}_g{g:02d}_c01.avi", _moving(20, seed=g), "mpeg4")
    write_video(src / "UCF-101" / "Basketball" / "v_Basketball_g02_c03.avi", _moving(5), "mpeg4")  # too short
    if with_lists:
        lists = src / "ucfTrainTestlist"
        lists.mkdir(parents=True)
        (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Basketball\n3 HandstandPushups\n")
        (lists / "trainlist01.txt").write_text(
            "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nHandstandPushups/v_HandstandPushups_g08_c01.avi 3\n"
        )
        (lists / "testlist01.txt").write_text(
            "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\nBasketball/v_Basketball_g02_c03.avi\n"
            "HandstandPushups/v_HandstandPushups_g01_c01.avi\n"
        )


def test_ucf101_labels_and_official_split(tmp_path: Path) -> None:
    src = tmp_path / "UCF101"
    _ucf_tree(src)
    res = prepare_dataset("ucf101", src, tmp_path / "out", progress=False, min_frames=8)
    ds = res.dataset
    assert ds.classes == ("ApplyEyeMakeup", "Basketball", "HandstandPushups")
    assert (ds.height, ds.width, ds.fps) == (64, 64, 25.0)
    got = {v.id: (v.label, v.split, v.subject, v.num_frames) for v in ds.videos}
    assert got == {
        "v_ApplyEyeMakeup_g01_c01": (0, "test", "g01", 20),
        "v_ApplyEyeMakeup_g08_c01": (0, "train", "g08", 20),
        "v_HandstandPushups_g01_c01": (2, "test", "g01", 20),
        "v_HandstandPushups_g08_c01": (2, "train", "g08", 20),
    }
    assert [(s.path, s.reason) for s in res.skipped] == [("UCF-101/Basketball/v_Basketball_g02_c03.avi", "too_short")]
    assert ds.splits() == {"test": 2, "train": 2}


def test_ucf101_group_rule_without_lists(tmp_path: Path) -> None:
    _ucf_tree(tmp_path, with_lists=False)
    found = scan("ucf101", tmp_path, split_index=1)
    assert found.classes == ["ApplyEyeMakeup", "Basketball", "HandStandPushups"]
    assert {it.id: it.split for it in found.items}["v_ApplyEyeMakeup_g08_c01"] == "train"
    assert {it.id: it.split for it in found.items}["v_Basketball_g02_c03"] == "test"
    assert {it.id: it.split for it in scan("ucf101", tmp_path, split_index=2).items}["v_ApplyEyeMakeup_g08_c01"] == (
        "test"
    )


# -- faces -------------------------------------------------------------------------------------------
def test_smooth_boxes_interpolates_and_removes_outliers() -> None:
    boxes = [(10.0 + t, 20.0, 30.0, 30.0) for t in range(12)]
    boxes[3] = None  # detector failure: interpolated
    boxes[6] = (100.0, 5.0, 10.0, 10.0)  # a false detection: removed by the running median
    boxes[0] = None  # before the first detection: held
    sm = smooth_boxes(boxes, window=5, margin=1.5)
    assert sm.shape == (12, 3)
    assert np.allclose(sm[:, 1], 35.0) and np.allclose(sm[:, 2], 45.0)
    assert np.abs(sm[1:11, 0] - (25.0 + np.arange(1, 11))).max() <= 1.0  # the outlier at 6 moves it by <= 1
    with pytest.raises(ValueError):
        smooth_boxes([None, None])
    frames = np.zeros((1, 20, 30, 3), np.uint8)
    frames[0, :, :, 0] = np.arange(30)[None, :]
    crop = crop_boxes(frames, np.array([[2.0, 10.0, 8.0]]), 8)  # box leaves the frame on the left
    assert crop.shape == (1, 8, 8, 3) and crop[0, :, :2, 0].max() == 0 and crop[0, 0, -1, 0] == 5


def test_mug_face_crops_with_haar_detector(tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    src = tmp_path / "MUG" / "subjects3"
    write_frames(src / "001" / "happiness" / "take000", _face_video(16, blank=(3, 9)))
    write_frames(src / "001" / "anger" / "take001", _face_video(16))
    write_video(src / "002" / "surprise" / "take000.avi", _face_video(16), "mjpeg", "yuvj444p")
    write_frames(src / "002" / "fear" / "take000", _moving(16, 120, 160))  # no face
    write_frames(src / "002" / "neutral" / "take000", _face_video(16))  # not one of the six classes
    res = prepare_dataset("mug", tmp_path / "MUG", tmp_path / "out", size=32, progress=False)
    ds = res.dataset
    assert ds.classes == ("anger", "disgust", "fear", "happiness", "sadness", "surprise")
    assert [(v.id, v.label, v.subject) for v in ds.videos] == [
        ("001/anger/take001", 0, "001"),
        ("001/happiness/take000", 3, "001"),
        ("002/surprise/take000", 5, "002"),
    ]
    assert {(s.path, s.reason) for s in res.skipped} == {
        ("subjects3/002/fear/take000", "no_face"),
        ("subjects3/002/neutral/take000", "excluded_class"),
    }
    assert res.face_stats["001/happiness/take000"] == {"frames": 16, "frames_searched": 16, "frames_found": 14}
    assert "face detector: no face in 2 of 48" in res.summary()
    # the crop follows the face: skin colour at the centre of every frame showing it
    centre = np.delete(ds.frames(1)[:, 12:20, 12:20].reshape(16, -1, 3).mean(axis=1), [3, 9], axis=0)
    assert (centre[:, 0] > 150).all() and (centre[:, 2] < 170).all()
    report = json.loads(res.report_path.read_text())
    assert report["face_detector"]["001/happiness/take000"]["frames_found"] == 14
    # the detector in worker processes gives the same dataset
    par = prepare_dataset("mug", tmp_path / "MUG", tmp_path / "par", size=32, workers=2, progress=False)
    assert par.dataset.content_hash == ds.content_hash and par.face_stats == res.face_stats


def test_uva_nemo_labels_with_monkeypatched_detector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def fake_detector(frame: np.ndarray) -> list[tuple[float, float, float, float]]:
        calls.append(1)
        if frame.mean() < 5:  # black frame: no face
            return []
        return [(10.0, 8.0, 20.0, 20.0), (0.0, 0.0, 4.0, 4.0)]  # largest wins

    monkeypatch.setattr(face_mod, "make_detector", lambda: fake_detector)
    src = tmp_path / "UvA-NEMO"
    write_video(src / "videos" / "001_deliberate_smile_1.mp4", _moving(20), "libx264", fps=50)
    write_video(src / "videos" / "001_spontaneous_smile_2.mp4", _moving(20, seed=3), "libx264", fps=50)
    write_video(src / "videos" / "002_spontaneous_smile_1.mp4", np.zeros((20, H, W, 3), np.uint8), "libx264", fps=50)
    res = prepare_dataset("uva-nemo", src, tmp_path / "out", size=16, progress=False, face_every=2, frame_step=1)
    ds = res.dataset
    assert ds.classes == ("deliberate", "spontaneous") and ds.fps == 50.0
    assert [(v.id, v.label, v.subject) for v in ds.videos] == [
        ("videos/001_deliberate_smile_1", 0, "001"),
        ("videos/001_spontaneous_smile_2", 1, "001"),
    ]
    assert [s.reason for s in res.skipped] == ["no_face"]
    assert res.face_stats["videos/001_deliberate_smile_1"]["frames_searched"] == 10
    decoded, _ = decode_video(src / "videos" / "001_deliberate_smile_1.mp4")
    box = np.array([[20.0, 18.0, 32.0]] * 20)  # centre of (10, 8, 20, 20), side 20 x 1.6
    assert np.array_equal(ds.frames(0), crop_boxes(decoded, box, 16))


# -- any folder: determinism, restart ----------------------------------------------------------------
def _folder_tree(src: Path) -> None:
    write_video(src / "cats" / "a.mp4", _moving(20, seed=1), "libx264")
    write_video(src / "cats" / "b.avi", _moving(18, seed=2), "mjpeg", "yuvj420p")
    write_frames(src / "cats" / "c", _moving(17, seed=3), ext="png")
    write_video(src / "dogs" / "sub" / "d.mkv", _moving(19, seed=4)[..., 2], "ffv1", "gray")
    write_video(src / "dogs" / "e.mov", _moving(16, 37, 51, seed=5), "libx264", "yuv444p")
    write_video(src / "loose.avi", _moving(21, seed=6), "mpeg4")
    (src / "dogs" / "broken.mp4").write_bytes(b"\x00" * 100)


def test_folder_classes_workers_and_restart_are_identical(tmp_path: Path) -> None:
    src = tmp_path / "raw"
    _folder_tree(src)
    one = prepare_dataset("folder", src, tmp_path / "one", size=24, progress=False)
    assert one.dataset.classes == ("cats", "dogs") and one.dataset.splits() == {"train": 6}
    assert [(v.id, v.label, v.num_frames) for v in one.dataset.videos] == [
        ("cats/a", 0, 20), ("cats/b", 0, 18), ("cats/c", 0, 17), ("dogs/e", 1, 16), ("dogs/sub/d", 1, 19),
        ("loose", -1, 21),
    ]  # fmt: skip
    assert [(s.path, s.reason) for s in one.skipped] == [("dogs/broken.mp4", "unreadable")]

    two = prepare_dataset("folder", src, tmp_path / "two", size=24, workers=2, progress=False)
    assert two.dataset.content_hash == one.dataset.content_hash

    class Stop(Exception):
        pass

    def stop_after_3(n: int) -> None:
        if n == 3:
            raise Stop

    with pytest.raises(Stop):
        prepare_dataset("folder", src, tmp_path / "three", size=24, progress=False, on_video=stop_after_3)
    assert (tmp_path / "three.partial").is_dir() and not (tmp_path / "three").exists()
    again = prepare_dataset("folder", src, tmp_path / "three", size=24, workers=2, progress=False)
    assert again.resumed == 3
    assert again.dataset.content_hash == one.dataset.content_hash
    a, b = (tmp_path / "one" / "frames.npy").read_bytes(), (tmp_path / "three" / "frames.npy").read_bytes()
    assert a == b
    r1 = json.loads(one.report_path.read_text())
    r3 = json.loads(again.report_path.read_text())
    assert r1["skipped"] == r3["skipped"]

    # a .partial left by a run with other options is not continued
    with pytest.raises(Stop):
        prepare_dataset("folder", src, tmp_path / "four", size=24, progress=False, on_video=stop_after_3)
    other = prepare_dataset("folder", src, tmp_path / "four", size=24, progress=False, labels=False)
    assert other.resumed == 0 and other.dataset.classes == ()

    with pytest.raises(FileExistsError):
        prepare_dataset("folder", src, tmp_path / "one", size=24, progress=False)
    with prepare_common._exclusive(tmp_path / "five"), pytest.raises(FileExistsError, match="another process"):
        prepare_dataset("folder", src, tmp_path / "five", size=24, progress=False)
    assert not (tmp_path / ".five.prepare-lock").exists()
    unlabeled = prepare_dataset("folder", src / "cats", tmp_path / "cats", size=24, progress=False)
    assert unlabeled.dataset.classes == () and len(unlabeled.dataset) == 3


_REAL_PROCESS = prepare_common._process


def _crash_on_b(index: int, item: VideoItem, pre: Preprocess):
    """A worker body whose decoder "segfaults" on one video."""
    if item.id == "cats/b":
        os._exit(3)
    return _REAL_PROCESS(index, item, pre)


def test_a_crashing_worker_skips_only_its_video(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "raw"
    _folder_tree(src)
    ref = prepare_dataset("folder", src, tmp_path / "ref", size=16, progress=False)
    monkeypatch.setattr(prepare_common, "_process", _crash_on_b)
    # spawn: the patched body reaches the workers by reference (this module, importable from the parent's
    # sys.path, which spawn passes on). Never a plain fork: a fork of this many-threaded pytest process
    # (torch's and OpenCV's pools) can deadlock the child, and a hung worker hangs the run.
    monkeypatch.setattr(prepare_common, "worker_context", lambda preload: multiprocessing.get_context("spawn"))
    res = prepare_dataset("folder", src, tmp_path / "out", size=16, workers=2, progress=False)
    assert [v.id for v in res.dataset.videos] == [v.id for v in ref.dataset.videos if v.id != "cats/b"]
    assert ("cats/b.avi", "crashed") in {(s.path, s.reason) for s in res.skipped}
    for i, v in enumerate(res.dataset.videos):
        j = [w.id for w in ref.dataset.videos].index(v.id)
        assert np.array_equal(res.dataset.frames(i), ref.dataset.frames(j))


# -- CLI and training --------------------------------------------------------------------------------
@pytest.mark.skipif(importlib.util.find_spec("g3an.cli.data") is None, reason="the `data` command group is pending")
def test_cli_prepare(tmp_path: Path) -> None:
    from click.testing import CliRunner

    import g3an.cli.prepare  # noqa: F401  (attaches `prepare` to the `data` group)
    from g3an.cli import main

    src = tmp_path / "raw"
    _folder_tree(src)
    runner = CliRunner()
    out = tmp_path / "ds"
    r = runner.invoke(main, ["data", "prepare", "folder", "--src", str(src), "--out", str(out), "--size", "16",
                             "--workers", "2", "--quiet"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "6 videos" in r.output and "unreadable 1" in r.output
    assert open_dataset(out).height == 16
    r = runner.invoke(main, ["data", "prepare", "folder", "--src", str(src), "--out", str(out)])
    assert r.exit_code != 0 and "--out" in r.output and "already exists" in r.output
    r = runner.invoke(main, ["data", "prepare", "ucf101", "--src", str(tmp_path / "nope"), "--out", str(out)])
    assert r.exit_code != 0 and "--src" in r.output
    r = runner.invoke(main, ["data", "prepare", "folder", "--src", str(src), "--out", str(src / "inside")])
    assert r.exit_code != 0 and "must not be inside --src" in r.output
    r = runner.invoke(main, ["data", "prepare", "folder", "--src", str(src / "cats"), "--out", str(tmp_path / "s"),
                             "--size", "16", "--frame-step", "2", "--max-frames", "6", "--min-frames", "4",
                             "--crop", "stretch", "--fps", "10", "--quiet"])  # fmt: skip
    assert r.exit_code == 0, r.output
    small = open_dataset(tmp_path / "s")
    assert small.fps == 5.0 and [v.num_frames for v in small.videos] == [6, 6, 6]
    full = decode_video(src / "cats" / "a.mp4")[0]
    assert np.array_equal(small.frames(0), resize_frames(full[:12:2], 16, 16))
    r = runner.invoke(main, ["data", "prepare", "--help"])
    assert r.exit_code == 0 and "--min-frames" in r.output


@pytest.mark.skipif(importlib.util.find_spec("g3an.data.loader") is None, reason="the clip loader is pending")
def test_training_starts_on_prepared_data(tmp_path: Path) -> None:
    from g3an.train import fit
    from g3an.train.config import TrainConfig

    src = tmp_path / "raw"
    _folder_tree(src)
    out = tmp_path / "ds"
    prepare_dataset("folder", src, out, size=32, progress=False)
    cfg = TrainConfig.from_dict({
        "model": "g3an", "data": str(out), "batch_size": 2, "steps": 1, "workers": 0, "device": "cpu",
        "sample_every": 0,
        "model_config": {"ch": 4, "ch_d": 4, "dim_z_a": 8, "dim_z_m": 4, "resolution": 32, "fsa_level": 2},
    })  # fmt: skip
    fit(cfg, tmp_path / "run")
    assert any((tmp_path / "run" / "checkpoints").glob("*.pt"))


def test_killed_cli_run_continues_to_an_identical_dataset(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    pytest.importorskip("g3an.cli.data")
    src = tmp_path / "raw"
    for i in range(14):
        write_video(src / f"k{i % 2}" / f"v{i:02d}.avi", _moving(40, 96, 128, seed=i), "mjpeg", "yuvj420p")
    ref = prepare_dataset("folder", src, tmp_path / "ref", size=32, progress=False)
    out = tmp_path / "ds"
    cmd = [sys.executable, "-m", "g3an", "data", "prepare", "folder", "--src", str(src), "--out", str(out),
           "--size", "32", "--quiet"]  # fmt: skip
    journal = tmp_path / "ds.partial" / "journal.jsonl"
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if journal.is_file() and journal.read_text().count("\n") >= 3:  # settings + 2 videos
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait(timeout=30)
    if proc.returncode == 0:
        pytest.skip("the run finished before it could be killed")
    assert (tmp_path / "ds.partial").is_dir() and not out.exists()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "continued an interrupted run" in done.stdout
    ds = open_dataset(out, verify=True)
    assert ds.content_hash == ref.dataset.content_hash
    assert (out / "frames.npy").read_bytes() == (tmp_path / "ref" / "frames.npy").read_bytes()
