"""``g3an data synth / preview / info`` through click's runner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner

from g3an.cli import main
from g3an.data.format import open_dataset
from g3an.media import read_video


def _run(*args) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def test_help_lists_the_subcommands() -> None:
    code, text = _run("data", "--help")
    assert code == 0 and all(name in text for name in ("synth", "preview", "info"))
    code, text = _run("data", "synth", "--help")
    assert code == 0 and "--videos N" in text and "default: 64" in text


def test_synth_preview_info(tmp_path: Path) -> None:
    out = tmp_path / "faces"
    args = ("data", "synth", "faces", "--out", out, "--videos", 8, "--size", 32, "--frames", 10, "--seed", 3,
            "--workers", 1, "--supersample", 2, "--quiet")  # fmt: skip
    code, text = _run(*args)
    assert code == 0, text
    ds = open_dataset(out)
    assert len(ds) == 8 and ds.frames(0).shape == (10, 32, 32, 3) and ds.content_hash in text
    code, text = _run(*args)
    assert code != 0 and f"--out {out} already exists" in text
    code, text = _run(*args, "--overwrite")
    assert code == 0 and open_dataset(out).content_hash == ds.content_hash

    code, text = _run("data", "preview", out, "--out", tmp_path / "p.gif", "--rows", 2, "--frames", 4, "--step", 2)
    assert code == 0, text
    gif = read_video(tmp_path / "p.gif")
    assert gif.shape[0] == 4 and gif.shape[1] > 2 * 32 and gif.shape[2] > 6 * 32
    code, text = _run("data", "preview", out, "--out", tmp_path / "p.png", "--rows", 1, "--frames", 3)
    assert code == 0 and read_video(tmp_path / "p.png").shape[0] == 1

    code, text = _run("data", "info", out, "--verify")
    assert code == 0 and "happiness" in text and "(verified)" in text and "8 videos" in text


def test_preview_shows_one_subject_per_row_and_one_class_per_column(tmp_path: Path) -> None:
    from g3an.data.preview import preview_grid
    from g3an.data.synthetic import SynthConfig, generate

    ds = generate(SynthConfig("actions", videos=30, size=24, frames=6, supersample=1), tmp_path / "a")
    grid = preview_grid(ds, rows=2, frames=3, step=2, seed=1)
    assert grid.videos.shape == (2, 10, 3, 24, 24, 3) and grid.col_labels == list(ds.classes)
    for r in range(2):
        assert {ds.videos[i].subject for i in grid.indices[r]} == {grid.row_labels[r]}
        assert [ds.videos[i].label for i in grid.indices[r]] == list(range(10))
        for c in range(10):
            assert np.array_equal(grid.videos[r, c], ds.frames(int(grid.indices[r, c]))[[0, 2, 4]])


def test_cli_errors_name_the_flag_or_path(tmp_path: Path) -> None:
    code, text = _run("data", "preview", tmp_path / "missing", "--out", tmp_path / "p.gif")
    assert code != 0 and "no such dataset directory" in text and str(tmp_path / "missing") in text
    code, text = _run("data", "preview", tmp_path, "--out", tmp_path / "p.avi")
    assert code != 0 and "--out" in text and "unsupported extension" in text
    code, text = _run("data", "synth", "movies", "--out", tmp_path / "x")
    assert code != 0 and "actions|faces" in text
    code, text = _run("data", "synth", "faces", "--out", tmp_path / "x", "--videos", 0)
    assert code != 0 and "--videos" in text
    code, text = _run("data", "info", tmp_path)
    assert code != 0 and "meta.json: missing" in text
