"""``g3an demo`` and the HTML report: a tiny end-to-end run, the page's links, and the page in headless Chromium."""

from __future__ import annotations

import json
import os
import shlex
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from g3an import machine
from g3an.cli import main
from g3an.demo import DemoConfig, machine_facts, run_demo
from g3an.manipulate import manipulate_checkpoint
from g3an.report import MediaItem, MetricRow, Report, Stage, line_chart, replace_section, write_report
from g3an.train import TrainConfig, fit
from tests.test_train import TINY_MODEL, TinyClips
from tests.webdriver import start_browser

#: The tiny G3AN of the demo tests (conditional on the 10 actions, as the shipped model).
TINY_DEMO_MODEL = {"ch": 4, "ch_d": 4, "dim_z_a": 8, "dim_z_m": 4}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class _Links(HTMLParser):
    """Collects what a page links to, and which tags it has."""

    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.hrefs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if values.get("src"):
            self.srcs.append(values["src"])
        if values.get("href"):
            self.hrefs.append(values["href"])


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


def _demo_config(out: Path, **kw) -> DemoConfig:
    values = {"out": out, "steps": 2, "init": None, "videos": 20, "eval_n": 10, "threads": 1, "workers": 1,
              "model_overrides": dict(TINY_DEMO_MODEL), "grid": (2, 2), "progress": False}  # fmt: skip
    values.update(kw)
    return DemoConfig(**values)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A whole demo with a tiny budget: 20 videos, a 2-step tiny G3AN, 10-video metrics."""
    root = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("G3AN_CACHE_DIR", str(root / "cache"))
        run_demo(_demo_config(root / "out"))
    return root / "out"


# -- the report on its own ----------------------------------------------------------------------------
def test_report_of_a_tiny_run_links_only_existing_files(tmp_path: Path) -> None:
    values = {"model": "g3an", "model_config": dict(TINY_MODEL), "batch_size": 4, "steps": 2, "workers": 0,
              "device": "cpu", "log_every": 1, "sample_every": 0, "seed": 1}  # fmt: skip
    cfg = TrainConfig.from_dict(values)
    result = fit(cfg, tmp_path / "run", dataset=TinyClips(), progress=False)
    manipulate_checkpoint(result.checkpoint, "grid", tmp_path / "media" / "grid.gif", rows=2, cols=2, seed=0)
    # fmt: off
    report = Report(
        title="tiny <run> & co",
        summary="a <script>alert(1)</script> summary",
        media=[MediaItem("grid", "media/grid.gif", "g3an manipulate CKPT grid --out 'a b.gif'", "rows: z_a",
                         [["latents file", "media/grid.gif.latents.json"]])],
        metrics=[MetricRow("fid10_embedded_actions", 12.5, 20.25, "lower", None, 10, "g3an eval ..."),
                 MetricRow("is10_embedded_actions", float("nan"), None, "higher", 0.1, 10)],
        baseline_name="before",
        stages=[Stage("train", 1.5, "g3an train ...", "resumed")],
        log="run/log.jsonl",
        facts={"machine": "x86_64 <cpu>"},
    )
    # fmt: on
    path = write_report(report, tmp_path)
    assert path == tmp_path / "report.html"
    page = _parse(path)
    assert "script" not in page.tags  # every text is escaped; the page has no script at all
    assert page.srcs == ["media/grid.gif"]
    for link in page.srcs + page.hrefs:
        assert (tmp_path / link).is_file(), link
    text = path.read_text()
    assert "tiny &lt;run&gt; &amp; co" in text and "<svg" in text and "<polyline" in text
    assert "fid10_embedded_actions" in text and "20.25" in text
    again = Report.from_dict(json.loads((tmp_path / "report.json").read_text()))
    assert json.dumps(again.to_dict()) == json.dumps(report.to_dict())

    report.media.append(MediaItem("gone", "media/missing.gif", "true"))
    with pytest.raises(FileNotFoundError, match=r"missing\.gif"):
        write_report(report, tmp_path)


def test_line_chart_edge_cases() -> None:
    assert line_chart({"a": []}, "empty") == ""
    one = line_chart({"a": [(1, 2.0)], "b": [(1, float("nan"))]}, "one <point>")
    assert "<circle" in one and "one &lt;point&gt;" in one and "<polyline" not in one
    flat = line_chart({"a": [(0, 1.0), (5, 1.0)]}, "flat")
    assert "<polyline" in flat and "nan" not in flat


def test_replace_section_replaces_appends_and_keeps_the_rest(tmp_path: Path) -> None:
    page = tmp_path / "results.md"
    head, tail = "# Results\n\nintro ±\n\n", "\n\n## Later\n\nkept\n"
    page.write_text(f"{head}<!-- a:start -->\nold\n<!-- a:end -->{tail}", encoding="utf-8")
    replace_section(page, "a", "new 1\nnew 2\n")
    assert page.read_text(encoding="utf-8") == f"{head}<!-- a:start -->\nnew 1\nnew 2\n<!-- a:end -->{tail}"
    replace_section(page, "b", "other")  # no markers yet: appended after one blank line, final newline added
    a_block, b_block = "<!-- a:start -->\nnew 1\nnew 2\n<!-- a:end -->", "<!-- b:start -->\nother\n<!-- b:end -->"
    expected = f"{head}{a_block}{tail.rstrip()}\n\n{b_block}\n"
    assert page.read_text(encoding="utf-8") == expected
    replace_section(page, "a", "")  # the other section and the text around both stay
    assert page.read_text(encoding="utf-8") == expected.replace("new 1\nnew 2\n", "")
    replace_section(tmp_path / "new" / "page.md", "a", "x\n", new_file="# Title\n")
    assert (tmp_path / "new" / "page.md").read_text() == "# Title\n\n<!-- a:start -->\nx\n<!-- a:end -->\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["new", "page.md", "results.md"]  # no temporary files


def test_machine_description_names_cpu_cores_and_torch() -> None:
    line = machine.describe()
    assert machine.cpu_model() in line and f"{machine.usable_cores()} usable cores" in line
    assert f"torch {torch.__version__}" in line and "CPU capability" in line and "\n" not in line
    assert machine_facts()["machine"] == line


# -- the demo end to end ------------------------------------------------------------------------------
def test_demo_end_to_end_and_rerun_reuses_every_stage(demo_run: Path) -> None:
    report = demo_run / "report.html"
    assert report.is_file()
    page = _parse(report)
    assert len(page.srcs) == 6  # dataset, samples, grid, vary-motion, vary-appearance, classes
    for link in page.srcs + page.hrefs:
        assert (demo_run / link).is_file(), link
    for gif in page.srcs:
        assert (demo_run / gif).read_bytes()[:6] == b"GIF89a"
    data = json.loads((demo_run / "report.json").read_text())
    metrics = [m["metric"] for m in data["metrics"]]
    assert metrics[:2] == ["fid10_embedded_actions", "is10_embedded_actions"]
    assert {m.removeprefix("disentangle/") for m in metrics[2:]} == {
        "appearance_agreement_under_motion", "class_agreement_under_appearance", "conditional_accuracy",
        "temporal_appearance_consistency"}  # fmt: skip
    assert [s["name"] for s in data["stages"]] == ["data", "train", "media", "eval", "report"]
    assert all(s["command"].startswith("g3an ") for s in data["stages"])
    assert "g3an train" in data["stages"][1]["command"] and "model.ch=4" in data["stages"][1]["command"]
    # every KEY=VALUE of the shown command is the run's setting, and every option the demo sets is shown
    from g3an.train.config import parse_override

    saved = json.loads((demo_run / "train" / "config.json").read_text())
    items = [a for a in shlex.split(data["stages"][1]["command"]) if "=" in a and not a.startswith("-")]
    for item in items:
        path, value = parse_override(item)
        node = saved
        for key in path[:-1]:
            node = node[key]
        assert node[path[-1]] == value, item
    assert {parse_override(i)[0][0] for i in items} >= {"ema_half_life", "keep_last", "d_time_roll"}
    assert (demo_run / "train" / "checkpoints" / "step-00000002.pt").is_file()
    text = report.read_text()
    assert "Losses" in text and "Stages and how to reproduce them" in text

    stamp = {p: p.stat().st_mtime_ns for p in (demo_run / "media").iterdir()}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("G3AN_CACHE_DIR", str(demo_run.parent / "cache"))
        run_demo(_demo_config(demo_run))
    assert {p: p.stat().st_mtime_ns for p in (demo_run / "media").iterdir()} == stamp
    again = json.loads((demo_run / "report.json").read_text())
    assert [s["note"] for s in again["stages"][:4]] == ["reused from an earlier run"] * 4


def test_demo_cli_options(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["demo", "--help"])
    assert res.exit_code == 0 and "--from-scratch" in res.output and "--steps" in res.output
    res = CliRunner().invoke(main, ["demo", "--out", str(tmp_path), "model.ch=4"])
    assert res.exit_code == 2 and "--from-scratch" in res.output
    res = CliRunner().invoke(main, ["demo", "--out", str(tmp_path), "--eval-n", "4"])
    assert res.exit_code == 2 and "--eval-n" in res.output


def test_demo_fine_tunes_and_reports_the_model_before(demo_run: Path, tmp_path: Path) -> None:
    if "init" not in TrainConfig.__dataclass_fields__:
        pytest.skip("TrainConfig.init (fine-tuning) is not in this version")
    start = demo_run / "train" / "checkpoints" / "step-00000002.pt"
    shutil.copytree(demo_run / "data", tmp_path / "out" / "data")  # reuse the dataset
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("G3AN_CACHE_DIR", str(tmp_path / "cache"))
        run_demo(_demo_config(tmp_path / "out", init=str(start)))
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["baseline_name"].endswith("(before fine-tuning)")
    assert all(m["baseline"] is not None for m in data["metrics"])
    assert f"init={start}" in data["stages"][1]["command"]
    saved = json.loads((tmp_path / "out" / "train" / "config.json").read_text())
    assert saved["init"] == str(start)
    # fine-tuning keeps the shipped model's identity term (from scratch it stays off: demo_run's config)
    assert saved["appearance_consistency"] == 100 and "appearance_consistency=100.0" in data["stages"][1]["command"]
    assert json.loads((demo_run / "train" / "config.json").read_text())["appearance_consistency"] == 0


# -- the page in a browser ----------------------------------------------------------------------------
def test_report_in_headless_chromium(demo_run: Path, tmp_path: Path) -> None:
    browser = start_browser(browser_log=True)
    try:
        browser.s("POST", "/url", {"url": (demo_run / "report.html").resolve().as_uri()})
        browser.wait("return document.readyState === 'complete'")
        media = browser.wait(
            "const els = Array.from(document.querySelectorAll('img, video'));"
            "const ok = els.every(e => e.tagName === 'IMG' ? e.complete && e.naturalWidth > 0 : e.readyState >= 2);"
            "return ok && els.map(e => e.getAttribute('src'));"
        )
        assert len(media) == 6
        assert browser.js("return document.querySelectorAll('svg polyline, svg circle').length") > 0
        shot = browser.screenshot(tmp_path / "report.png")
        log = browser.browser_log()
    finally:
        browser.close()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    severe = [entry for entry in log if entry.get("level") == "SEVERE"]
    assert not severe, severe
    keep = os.environ.get("G3AN_KEEP_SCREENSHOT")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "report.png")
