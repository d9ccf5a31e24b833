"""benchmarks/paper_tables.py on a tiny budget: per-run JSONs, resumability, and tables equal to the JSONs' means."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import statistics
import sys
from pathlib import Path

import pytest

from g3an.report import section_markers

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "paper_tables.py"
OTHER = "# Results\n\n## Shipped models\n\nWritten by someone else; must survive.\n"


@pytest.fixture(scope="module")
def paper_tables():
    spec = importlib.util.spec_from_file_location("paper_tables", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["paper_tables"] = module  # dataclasses look their module up while the file executes
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("paper_tables", None)


def _argv(tmp_path: Path) -> list[str]:
    return ["--datasets", "faces", "--rows", "g3an,vgan", "--seeds", "2", "--steps", "2", "--batch-size", "2",
            "--ch", "4", "--eval-n", "10", "--eval-batch", "10", "--disentangle-scale", "32", "--jobs", "1",
            "--threads", "1", "--videos", "12", "--data-dir", str(tmp_path / "data"),
            "--work-dir", str(tmp_path / "work"), "--out", str(tmp_path / "results.md")]  # fmt: skip


def _row_line(markdown: str, label: str, after: str) -> str:
    section = markdown[markdown.index(after) :]
    return next(line for line in section.splitlines() if line.startswith(f"| {label} |"))


def test_tiny_run_writes_jsons_resumes_and_tables_match(paper_tables, tmp_path: Path) -> None:
    (tmp_path / "results.md").write_text(OTHER)
    first = paper_tables.main(_argv(tmp_path))
    assert len(first["trained"]) == 4 and first["skipped"] == []

    files = sorted((tmp_path / "work" / "results" / "faces").glob("*.json"))
    assert len(files) == 4
    records = [json.loads(f.read_text()) for f in files]
    for rec in records:
        assert rec["status"] == "ok" and rec["steps"] == 2 and rec["videos"] == 4
        assert rec["metrics"]["fid"]["metric"] == "fid10_embedded_faces"
        assert rec["metrics"]["is"]["metric"] == "is10_embedded_faces"
        assert rec["train_config"]["model_config"]["resolution"] == 32
        assert rec["package_version"] and "commit" in rec["git"] and rec["seconds"]["train"] > 0
        assert rec["seconds"]["train_cpu"] > 0 and rec["seconds"]["eval_cpu"] > 0
        assert rec["disentangle"]["conditional_accuracy"]["value"] is None  # unconditional rows
        assert rec["disentangle"]["temporal_appearance_consistency"]["value"] is not None
        separate_codes = rec["row"] == "g3an"
        assert (rec["disentangle"]["appearance_agreement_under_motion"]["value"] is not None) == separate_codes
    assert sorted((r["row"], r["seed"]) for r in records) == [("g3an", 0), ("g3an", 1), ("vgan", 0), ("vgan", 1)]

    # A second call retrains nothing and leaves the result files alone.
    stamps = {f: f.stat().st_mtime_ns for f in files}
    second = paper_tables.main(_argv(tmp_path))
    assert second["trained"] == [] and len(second["skipped"]) == 4
    assert {f: f.stat().st_mtime_ns for f in files} == stamps

    text = (tmp_path / "results.md").read_text()
    assert text.startswith(OTHER.rstrip("\n"))  # the other engineer's part is kept
    start, end = section_markers(paper_tables.SECTION)
    assert (start, end) == ("<!-- paper-tables:start -->", "<!-- paper-tables:end -->")
    assert text.count(start) == 1 and text.count(end) == 1
    body = text.split(start)[1].split(end)[0]
    assert body == "\n" + second["markdown"]
    assert "### Table 1:" in body and "### Table 3:" in body and "FVD" in body
    assert "--rows g3an,vgan" in body and "--steps 2" in body
    for row, label in (("g3an", "G3AN"), ("vgan", "VGAN")):
        recs = [r for r in records if r["row"] == row]
        line = _row_line(body, label, "### Table 1:")
        for short in ("fid", "is"):
            values = [r["metrics"][short]["value"] for r in recs]
            assert f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}" in line
        assert line.split(" | ")[1] == "2"  # seeds that finished
    vgan_line = _row_line(body, "vgan", "### Disentanglement")
    assert vgan_line.count("n/a") == 3
    g3an_line = _row_line(body, "g3an", "### Disentanglement")
    temporal = [r["disentangle"]["temporal_appearance_consistency"]["value"] for r in records if r["row"] == "g3an"]
    assert f"{statistics.fmean(temporal):.3f}" in g3an_line


def test_precision_option_reaches_every_run_and_the_command(paper_tables, tmp_path: Path) -> None:
    from g3an.train import TrainConfig

    row = paper_tables.selected_rows("g3an")[0]
    fp32 = paper_tables.build_parser().parse_args(_argv(tmp_path))
    values = paper_tables.train_dict(row, tmp_path, 0, fp32)
    assert "precision" not in values  # fp32 runs keep the run directories they had before the option
    assert TrainConfig.from_dict(values).precision == "fp32"
    assert "--precision fp32" in paper_tables.command_line(fp32)
    bf16 = paper_tables.build_parser().parse_args([*_argv(tmp_path), "--precision", "bf16"])
    values = paper_tables.train_dict(row, tmp_path, 0, bf16)
    assert TrainConfig.from_dict(values).precision == "bf16"
    assert "--precision bf16" in paper_tables.command_line(bf16)


def test_ema_batchnorm_option_reaches_every_run_and_0_keeps_the_earlier_digests(paper_tables, tmp_path: Path) -> None:
    from g3an.train import TrainConfig

    row = paper_tables.selected_rows("g3an")[0]

    def spec(*extra: str):
        args = paper_tables.build_parser().parse_args([*_argv(tmp_path), *extra])
        train = paper_tables.train_dict(row, tmp_path, 0, args)
        return args, paper_tables.RunSpec(row=row.key, dataset="faces", seed=0, train=train, eval={}, dataset_hash="x")

    default, recomputed = spec()
    assert TrainConfig.from_dict(recomputed.train).ema_bn_videos == 256
    assert "--ema-bn-videos 256" in paper_tables.command_line(default)
    _, kept = spec("--ema-bn-videos", "0")
    assert TrainConfig.from_dict(kept.train).ema_bn_videos == 0
    before = dataclasses.replace(kept, train={k: v for k, v in kept.train.items() if k != "ema_bn_videos"})
    assert kept.digest == before.digest != recomputed.digest


def test_estimate_measures_each_row_and_prints_the_expected_time(paper_tables, tmp_path: Path, capsys) -> None:
    args = paper_tables.build_parser().parse_args([*_argv(tmp_path), "--estimate"])
    rows = paper_tables.selected_rows("g3an,vgan")
    wall = paper_tables.estimate(args, rows, ["faces"])
    out = capsys.readouterr().out
    assert wall > 0 and f"{wall / 60:.0f} min with --jobs 1" in out
    for row in rows:  # one line per row: s/step, s/video, s/run, all positive
        line = next(line for line in out.splitlines() if line.startswith(f"{row.key} "))
        assert len(line.split()) == 4 and all(float(v) > 0 for v in line.split()[1:]), line


def test_an_interrupted_run_writes_no_result_and_stops_the_invocation(paper_tables, tmp_path: Path,
                                                                      monkeypatch) -> None:  # fmt: skip
    import g3an.train
    from g3an.train.loop import TrainResult

    calls = []

    def stopped(cfg, run_dir, **kw) -> TrainResult:  # as fit returns after SIGTERM / SIGINT: checkpoint saved
        calls.append(run_dir)
        return TrainResult(step=1, videos=2, checkpoint=Path(run_dir) / "step-1.pt", interrupted=True,
                           signal_name="SIGTERM")  # fmt: skip

    monkeypatch.setattr(g3an.train, "fit", stopped)
    with pytest.raises(SystemExit, match="run the same command again to resume"):
        paper_tables.main(_argv(tmp_path))
    assert len(calls) == 1  # no further run started
    assert not list((tmp_path / "work" / "results").rglob("*.json"))  # so a rerun trains (resumes) it
