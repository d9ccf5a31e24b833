"""synth-actions and synth-faces: byte-identical generation, labels, subjects, splits, balance, motion."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from g3an.data.synthetic import DATASETS, SynthConfig, describe_video, generate, render_video
from g3an.data.synthetic.common import plan_videos
from g3an.data.synthetic.faces import APEX, expression_track


def _tiny(dataset: str, **kw) -> SynthConfig:
    return SynthConfig(dataset, **{"videos": 14, "size": 32, "frames": 6, "seed": 1, "supersample": 2, **kw})


@pytest.mark.parametrize("name", ["actions", "faces"])
def test_same_seed_gives_identical_bytes_and_other_seeds_differ(tmp_path: Path, name: str) -> None:
    a = generate(_tiny(name), tmp_path / "a")
    b = generate(_tiny(name), tmp_path / "b")
    c = generate(_tiny(name, seed=2), tmp_path / "c")
    assert a.content_hash == b.content_hash != c.content_hash
    assert (tmp_path / "a" / "frames.npy").read_bytes() == (tmp_path / "b" / "frames.npy").read_bytes()
    assert a.meta["videos"] == b.meta["videos"]


def test_workers_do_not_change_the_output(tmp_path: Path) -> None:
    config = _tiny("actions", videos=10)
    one = generate(config, tmp_path / "one", workers=1)
    two = generate(config, tmp_path / "two", workers=2)
    assert one.content_hash == two.content_hash
    assert (tmp_path / "one" / "frames.npy").read_bytes() == (tmp_path / "two" / "frames.npy").read_bytes()


@pytest.mark.parametrize("name", ["actions", "faces"])
def test_labels_subjects_and_splits(tmp_path: Path, name: str) -> None:
    mod = DATASETS[name]
    config = _tiny(name, videos=4 * len(mod.CLASSES) + 3)
    ds = generate(config, tmp_path / "ds")
    assert ds.classes == mod.CLASSES and ds.fps == mod.FPS
    counts = Counter(ds.labels.tolist())
    assert set(counts) == set(range(len(mod.CLASSES))) and max(counts.values()) - min(counts.values()) <= 1
    by_subject: dict[str, list] = {}
    for v in ds.videos:
        by_subject.setdefault(v.subject, []).append(v)
    assert len(by_subject) == 5  # ceil(videos / classes): each subject performs the classes in turn
    appearance = list(mod.APPEARANCE_FACTORS)
    looks = []
    for videos in by_subject.values():
        assert len({v.split for v in videos}) == 1  # split by subject
        first = {k: videos[0].factors[k] for k in appearance}
        assert all({k: v.factors[k] for k in appearance} == first for v in videos)  # fixed per subject
        assert len({v.label for v in videos}) == len(videos)  # a subject does not repeat a class
        looks.append(first)
    assert len({tuple(sorted(map(str, x.items()))) for x in looks}) == len(looks)  # subjects differ
    assert sorted(ds.splits()) == ["test", "train"]
    for v in ds.videos:  # every factor is stored, within its documented range
        for key, spec in mod.APPEARANCE_FACTORS.items():
            value = v.factors[key]
            assert value in spec if isinstance(spec, list) else spec[0] <= value <= spec[1]
        assert set(mod.MOTION_FACTORS) <= set(v.factors)
    assert ds.attributes["generator"] == config.name and ds.attributes["config"]["seed"] == 1
    plans = plan_videos(config.videos, len(mod.CLASSES), config.seed)
    assert ds.videos[7].factors == describe_video(config, plans[7])


def test_motion_nuisances_vary_per_video(tmp_path: Path) -> None:
    ds = generate(_tiny("actions", videos=20), tmp_path / "ds")
    for key in ("period", "phase", "amplitude", "start_x"):
        assert len({v.factors[key] for v in ds.videos}) == 20
    assert {v.factors["direction"] for v in ds.videos} == {"left", "right"}


def test_split_holds_out_a_fraction_of_subjects() -> None:
    plans = plan_videos(1000, 10, seed=0, test_fraction=0.2)
    test_subjects = {p.subject for p in plans if p.split == "test"}
    train_subjects = {p.subject for p in plans if p.split == "train"}
    assert len(test_subjects) == 20 and not test_subjects & train_subjects
    assert Counter(p.label for p in plans if p.split == "test") == Counter({k: 20 for k in range(10)})
    nine = plan_videos(900, 10, seed=0, subjects=9)
    assert len({p.subject for p in nine}) == 9 and len({p.subject for p in nine if p.split == "test"}) == 2
    assert {p.split for p in plan_videos(30, 10, seed=0, test_fraction=0.0)} == {"train"}


@pytest.mark.parametrize("name", ["actions", "faces"])
def test_every_class_moves_and_sizes_are_honoured(name: str) -> None:
    mod = DATASETS[name]
    for size in (24, 40):
        config = SynthConfig(name, videos=len(mod.CLASSES), size=size, frames=24, seed=0, supersample=2)
        for plan in plan_videos(config.videos, len(mod.CLASSES), 0):
            frames, factors = render_video(config, plan)
            assert frames.shape == (24, size, size, 3) and frames.dtype == np.uint8
            change = np.abs(frames.astype(int) - frames[:1].astype(int)).max(axis=(1, 2, 3))
            assert change.max() > 40, (mod.CLASSES[plan.label], factors)  # the figure / face moves
            assert frames.std() > 10  # not a blank frame


def test_face_expression_track_reaches_apex() -> None:
    motion = {"onset": 4, "ramp": 10.0, "intensity": 0.8, "returns": True, "hold": 8.0, "release": 10.0, "blinks": []}
    track = expression_track(motion, 2, 64)  # surprise
    assert track["open"][0] == 0 and np.isclose(track["open"][14:22], 0.8 * APEX["surprise"]["open"]).all()
    assert track["open"][-1] == 0  # released back to neutral
    assert not track["smile"].any()
