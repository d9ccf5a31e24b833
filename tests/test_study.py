"""``g3an study``: pair rendering, the rating server (concurrency, restart, bad requests) and the results math."""

from __future__ import annotations

import csv
import http.client
import json
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from g3an import create_generator, make_config
from g3an.checkpoint import make_checkpoint, save_checkpoint
from g3an.cli import main
from g3an.data.format import DatasetWriter
from g3an.media import read_video
from g3an.study.create import StudyError, StudyOptions, create_study, load_manifest, open_source
from g3an.study.db import DB_FILE, Answer, StudyDB
from g3an.study.results import analyse, bootstrap_interval, study_results, wilson_interval
from g3an.study.server import MAX_BODY, StudyServer, make_server
from tests.webdriver import start_browser

CLASSES = ["smile", "frown"]
PAIRS, CHECKS = 6, 0.34  # -> 3 attention checks, 9 pairs per rater


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny conditional G3AN checkpoint and a tiny labelled prepared dataset with the same class names."""
    root = tmp_path_factory.mktemp("sources")
    torch.manual_seed(0)
    cfg = make_config("g3an", ch=4, ch_d=4, dim_z_a=16, dim_z_m=4, resolution=32, fsa_level=2, num_classes=2)
    gen = create_generator("g3an", cfg)
    ckpt = root / "g.pt"
    save_checkpoint(ckpt, make_checkpoint("g3an", cfg, gen, meta={"class_names": CLASSES}))
    rng = np.random.default_rng(0)
    with DatasetWriter(root / "real", 32, 32, 8.0, "test", class_names=CLASSES) as writer:
        for i in range(6):
            frames = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
            writer.add_video(frames, label=i % 2, id=f"v{i}", split="test" if i < 4 else "train")
    return ckpt, root / "real"


@pytest.fixture(scope="module")
def study_dir(sources: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    ckpt, real = sources
    out = tmp_path_factory.mktemp("study") / "s"
    args = ["--a", ckpt, "--b", real, "--pairs", PAIRS, "--checks", CHECKS, "--same-class", "--seed", 3,
            "--split", "test", "--out", out]  # fmt: skip
    code = CliRunner().invoke(main, ["study", "create", *map(str, args)])
    assert code.exit_code == 0, code.output
    return out


@pytest.fixture
def fresh_study(study_dir: Path, tmp_path: Path) -> Path:
    """A copy of the study without answers (each server test starts clean)."""
    out = tmp_path / "s"
    shutil.copytree(study_dir, out, ignore=shutil.ignore_patterns(DB_FILE + "*", "results.*"))
    return out


# -- create -----------------------------------------------------------------------------------------
def test_create_manifest(study_dir: Path) -> None:
    m = load_manifest(study_dir)
    assert set(m["methods"]) == {"g3an", "real"} and m["comparisons"] == [["g3an", "real"]]
    assert m["methods"]["real"]["kind"] == "real" and m["methods"]["g3an"]["kind"] == "model"
    assert m["video"] == {"size": [32, 32], "frames": [16]}
    assert m["seed"] == 3 and m["question"] == "Which video clip is more realistic?"
    compare = [p for p in m["pairs"] if p["kind"] == "compare"]
    checks = [p for p in m["pairs"] if p["kind"] == "check"]
    assert len(compare) == PAIRS and len(checks) == 3
    assert len({p["id"] for p in m["pairs"]}) == len(m["pairs"])
    for p in compare:  # --same-class: both videos show one class; A on the recorded side
        left, right = m["media"][p["left"]], m["media"][p["right"]]
        assert left["class"] == right["class"] in CLASSES
        a_entry = left if p["a_side"] == "left" else right
        assert a_entry["method"] == "g3an"
        b_entry = right if p["a_side"] == "left" else left
        assert b_entry["video"] in ("v0", "v1", "v2", "v3")  # --split test
    for p in checks:
        assert m["media"][p[p["correct"]]]["check"] == "clean"
        other = "right" if p["correct"] == "left" else "left"
        assert m["media"][p[other]]["check"] == "broken"
    assert len(m["media"]) == 2 * len(m["pairs"])
    for entry in m["media"].values():
        path = study_dir / entry["file"]
        assert path.is_file() and path.read_bytes()[4:8] == b"ftyp"  # an mp4


def test_several_methods_in_one_study(sources: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, real = sources
    out = tmp_path / "table"
    args = ["--a", f"G3AN={ckpt}", "--b", f"real={real}", "--b", f"other={real}", "--pairs", "2", "--checks", "0.25"]
    result = CliRunner().invoke(main, ["study", "create", *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    m = load_manifest(out)
    assert m["comparisons"] == [["G3AN", "real"], ["G3AN", "other"]] and set(m["methods"]) == {"G3AN", "real", "other"}
    compare = [p for p in m["pairs"] if p["kind"] == "compare"]
    assert sorted((p["a"], p["b"]) for p in compare) == [("G3AN", "other")] * 2 + [("G3AN", "real")] * 2
    assert sum(p["kind"] == "check" for p in m["pairs"]) == 1  # ceil(0.25 * 4)
    result = CliRunner().invoke(main, ["study", "results", str(out)])
    assert result.exit_code == 0 and "| G3AN | real |" in result.output and "| G3AN | other |" in result.output


def test_broken_manifests_are_refused(study_dir: Path, tmp_path: Path) -> None:
    good = json.loads((study_dir / "study.json").read_text())
    edits = [
        lambda m: m.update(format="other"),
        lambda m: m.update(pairs=[]),
        lambda m: m["pairs"][0].update(left="nope"),
        lambda m: m["pairs"][1].update(id=m["pairs"][0]["id"]),
        lambda m: m["pairs"][0].update(kind="other"),
        lambda m: m["media"][m["pairs"][0]["left"]].update(file="../../etc/passwd"),
    ]
    for i, edit in enumerate(edits):
        bad = tmp_path / f"bad{i}"
        shutil.copytree(study_dir, bad, ignore=shutil.ignore_patterns(DB_FILE + "*", "results.*"))
        manifest = json.loads(json.dumps(good))
        edit(manifest)
        (bad / "study.json").write_text(json.dumps(manifest))
        with pytest.raises((StudyError, ValueError)):
            make_server(bad, "127.0.0.1", 0).server_close()


def test_create_is_reproducible_and_validates(sources: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, real = sources
    manifests = []
    for name in ("x", "y"):
        a, b = open_source(real, None, "--a"), open_source(real, "other", "--b")
        options = StudyOptions(pairs=4, checks=0.25, seed=7, size=(16, 16))
        manifests.append(create_study(tmp_path / name, a, b, options))
    assert manifests[0]["pairs"] == manifests[1]["pairs"] and manifests[0]["media"] == manifests[1]["media"]
    assert manifests[0]["video"] == {"size": [16, 16], "frames": [16]}
    clip = read_video(tmp_path / "x" / next(iter(manifests[0]["media"].values()))["file"])
    assert clip.shape == (16, 16, 16, 3)
    assert {p["a_side"] for p in manifests[0]["pairs"] if p["kind"] == "compare"} <= {"left", "right"}
    with pytest.raises(StudyError, match="already exists"):
        create_study(tmp_path / "x", open_source(real, None, "--a"), open_source(real, None, "--b"), StudyOptions())
    with pytest.raises(StudyError) as err:
        open_source(tmp_path / "missing", None, "--b")
    assert err.value.param == "--b"
    with pytest.raises(StudyError) as err:
        open_source(real, None, "--b", split="val")
    assert err.value.param == "--split"
    unlabelled = tmp_path / "unlabelled"
    with DatasetWriter(unlabelled, 32, 32, 8.0, "test") as writer:
        writer.add_video(np.zeros((16, 32, 32, 3), np.uint8))
    result = CliRunner().invoke(main, ["study", "create", "--a", str(ckpt), "--b", str(unlabelled), "--same-class",
                                       "--out", str(tmp_path / "z")])  # fmt: skip
    assert result.exit_code == 2 and "--same-class" in result.output and "unlabelled" in result.output


# -- server -----------------------------------------------------------------------------------------
class Running:
    """A study server on an ephemeral 127.0.0.1 port, serving in a thread."""

    def __init__(self, study: Path, max_raters: int = 1000, max_connections: int = 64) -> None:
        self.server: StudyServer = make_server(study, "127.0.0.1", 0, max_raters, max_connections)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                raw: bytes | None = None) -> tuple[int, bytes, dict[str, str]]:  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
            conn.request(method, path, body=data, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read(), dict(resp.getheaders())
        finally:
            conn.close()

    def json(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        status, data, _ = self.request(method, path, body)
        return status, json.loads(data)


@pytest.fixture
def running(fresh_study: Path) -> Iterator[Running]:
    srv = Running(fresh_study)
    yield srv
    srv.stop()


def rate(srv: Running, rater: str, limit: int | None = None, pick: str = "left") -> list[str]:
    """Answer up to ``limit`` pairs as ``rater``; returns the pair ids answered."""
    done: list[str] = []
    start = None
    while limit is None or len(done) < limit:
        status, nxt = srv.json("GET", f"/api/next?rater={rater}")
        assert status == 200
        start = nxt["answered"] if start is None else start
        assert nxt["answered"] == start + len(done)  # progress counts every stored answer
        if nxt["done"]:
            break
        status, ans = srv.json("POST", "/api/answer", {"rater": rater, "pair": nxt["pair"], "choice": pick})
        assert status == 200 and ans["stored"], ans
        done.append(nxt["pair"])
    return done


def test_page_and_media(running: Running) -> None:
    status, page, headers = running.request("GET", "/")
    assert status == 200 and b"Which video clip is more realistic?" in page and b"<video" in page
    assert "Content-Security-Policy" in headers and b"http" not in page.split(b"<script>")[1].split(b"localhost")[0]
    _, rater = running.json("POST", "/api/rater", {})
    _, nxt = running.json("GET", f"/api/next?rater={rater['rater']}")
    assert len(nxt["preload"]) == 2 and all(u.startswith("/media/") for u in nxt["preload"])
    status, video, headers = running.request("GET", nxt["left"])
    assert status == 200 and headers["Content-Type"] == "video/mp4" and video[4:8] == b"ftyp"
    status, part, headers = running.request("GET", nxt["left"], headers={"Range": "bytes=0-9"})
    assert status == 206 and part == video[:10] and headers["Content-Range"] == f"bytes 0-9/{len(video)}"


def test_concurrent_raters_no_lost_or_duplicate_answers(running: Running, fresh_study: Path) -> None:
    n_raters, n_pairs = 12, len(running.server.pairs)
    raters = [running.json("POST", "/api/rater", {})[1]["rater"] for _ in range(n_raters)]
    answered: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def work(rater: str, i: int) -> None:
        try:
            answered[rater] = rate(running, rater, pick="left" if i % 2 else "right")
            # a replayed answer is refused, whatever side it picks
            status, body = running.json("POST", "/api/answer",
                                        {"rater": rater, "pair": answered[rater][0], "choice": "left"})  # fmt: skip
            assert status == 409, body
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(r, i)) for i, r in enumerate(raters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for rater in raters:  # each rater saw every pair exactly once
        assert sorted(answered[rater]) == sorted(running.server.pairs)
    orders = {tuple(v) for v in answered.values()}
    assert len(orders) > 1  # the order is shuffled per rater
    with sqlite3.connect(fresh_study / DB_FILE) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = conn.execute("SELECT rater, pair, COUNT(*) FROM answers GROUP BY rater, pair").fetchall()
    assert len(rows) == n_raters * n_pairs and all(r[2] == 1 for r in rows)


def test_restart_in_the_middle_keeps_answers(fresh_study: Path) -> None:
    srv = Running(fresh_study)
    rater = srv.json("POST", "/api/rater", {})[1]["rater"]
    first = rate(srv, rater, limit=4)
    srv.stop()  # the server goes away mid-study
    srv = Running(fresh_study)
    try:
        status, nxt = srv.json("GET", f"/api/next?rater={rater}")
        assert status == 200 and nxt["answered"] == 4 and nxt["pair"] not in first
        rest = rate(srv, rater)
        assert sorted(first + rest) == sorted(srv.server.pairs)
        assert srv.json("GET", f"/api/next?rater={rater}")[1]["done"] is True
    finally:
        srv.stop()
    db = StudyDB(fresh_study / DB_FILE, readonly=True)
    assert len(db.answers()) == len(first) + len(rest)
    db.close()


class CliServer(Running):
    """``g3an study serve STUDY --port 0`` in a child process (so it can be killed like a crash)."""

    def __init__(self, study: Path) -> None:
        cmd = [sys.executable, "-m", "g3an", "study", "serve", str(study), "--port", "0"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        match = re.search(r"http://127\.0\.0\.1:([0-9]+)/", line)
        assert match, f"unexpected first line from g3an study serve: {line!r}"
        self.port = int(match.group(1))

    def stop(self) -> None:
        self.proc.kill()  # SIGKILL: no clean shutdown, as in a crash
        self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()


def test_crash_of_the_server_process_loses_no_answer(fresh_study: Path) -> None:
    srv = CliServer(fresh_study)
    try:
        rater = srv.json("POST", "/api/rater", {})[1]["rater"]
        first = rate(srv, rater, limit=5)
    finally:
        srv.stop()
    srv = CliServer(fresh_study)
    try:
        rest = rate(srv, rater)
    finally:
        srv.stop()
    assert len(first) == 5 and sorted(first + rest) == sorted(p["id"] for p in load_manifest(fresh_study)["pairs"])
    stored = StudyDB(fresh_study / DB_FILE, readonly=True).answers()
    assert [a.pair for a in stored] == first + rest


def test_bad_requests_get_4xx_without_details(running: Running) -> None:
    rater = running.json("POST", "/api/rater", {})[1]["rater"]
    pair = running.json("GET", f"/api/next?rater={rater}")[1]["pair"]
    some_media = next(iter(running.server.media))
    cases: list[tuple[int, str, str, bytes | None, dict[str, str]]] = [
        (413, "POST", "/api/answer", b"{" + b" " * MAX_BODY + b"}", {}),
        (400, "POST", "/api/answer", b"{not json", {}),
        (400, "POST", "/api/answer", b"[1, 2]", {}),
        (400, "POST", "/api/answer", b"\xff\xfe", {}),
        (400, "POST", "/api/answer", json.dumps({"rater": rater, "pair": pair, "choice": "up"}).encode(), {}),
        (400, "POST", "/api/answer", json.dumps({"rater": "x/../y", "pair": pair, "choice": "left"}).encode(), {}),
        (404, "POST", "/api/answer", json.dumps({"rater": "A" * 24, "pair": pair, "choice": "left"}).encode(), {}),
        (404, "POST", "/api/answer", json.dumps({"rater": rater, "pair": "p9999", "choice": "left"}).encode(), {}),
        (400, "POST", "/api/answer", json.dumps({"rater": rater, "pair": pair, "choice": "left", "x": 1}).encode(), {}),
        (
            400,
            "POST",
            "/api/answer",
            json.dumps({"rater": rater, "pair": pair, "choice": "left", "elapsed_ms": "1"}).encode(),
            {},
        ),
        (400, "GET", f"/api/next?rater={rater}&rater={rater}", None, {}),
        (400, "GET", "/api/next", None, {}),
        (404, "GET", "/api/next?rater=" + "B" * 24, None, {}),
        (404, "GET", "/media/../study.json", None, {}),
        (404, "GET", "/media/%2e%2e/study.json", None, {}),
        (404, "GET", "/media/..%2fstudy.json", None, {}),
        (404, "GET", "/media/%2e%2e%2fanswers.sqlite", None, {}),
        (404, "GET", f"/media/{some_media}.mp4/../../study.json", None, {}),
        (404, "GET", "/study.json", None, {}),
        (404, "GET", "/answers.sqlite", None, {}),
        (404, "GET", "/" + "%2e%2e/" * 4 + "etc/passwd", None, {}),
        (404, "GET", "/media/" + "0" * 16 + ".mp4", None, {}),
        (405, "PUT", "/api/answer", b"{}", {}),
        (405, "DELETE", "/", None, {}),
        (405, "GET", "/api/answer", None, {}),
        (405, "POST", "/", b"{}", {}),
        (416, "GET", f"/media/{some_media}.mp4", None, {"Range": "bytes=99999999-"}),
        (400, "POST", "/api/rater", b"{}", {"Content-Length": "-5"}),
    ]
    for status, method, path, raw, headers in cases:
        got, body, _ = running.request(method, path, raw=raw, headers=headers)
        assert got == status, (method, path, got, body[:200])
        assert b"Traceback" not in body and b"g3an-study" not in body and b'File "' not in body
        if body:
            assert set(json.loads(body)) == {"error"}
    assert len(StudyDB(running.server.study / DB_FILE, readonly=True).answers()) == 0


def test_rater_limit(fresh_study: Path) -> None:
    srv = Running(fresh_study, max_raters=2)
    try:
        assert [srv.request("POST", "/api/rater", raw=b"{}")[0] for _ in range(3)] == [200, 200, 503]
    finally:
        srv.stop()


def test_idle_connections_cannot_take_every_thread(fresh_study: Path) -> None:
    srv = Running(fresh_study, max_connections=2)
    try:
        idle = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(2)]  # send nothing
        time.sleep(0.3)
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            srv.request("GET", "/")
        for sock in idle:
            sock.close()
        deadline = time.monotonic() + 10
        while True:  # the slots come back once the idle connections are gone
            try:
                assert srv.request("GET", "/")[0] == 200
                break
            except (http.client.RemoteDisconnected, ConnectionResetError):
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        srv.stop()


def test_clients_that_stall_or_vanish_mid_body(running: Running, caplog: pytest.LogCaptureFixture) -> None:
    head = b"POST /api/answer HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", running.port)) as sock:
            sock.sendall(head)  # and hang up before the rest of the body
    time.sleep(0.3)
    assert running.request("GET", "/")[0] == 200  # the server serves on
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_internal_errors_are_generic(running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("secret detail /etc/shadow")

    monkeypatch.setattr(running.server.db, "add_rater", boom)
    status, body, _ = running.request("POST", "/api/rater", raw=b"{}")
    assert status == 500 and json.loads(body) == {"error": "internal server error"}


# -- results ----------------------------------------------------------------------------------------
def test_wilson_and_bootstrap_known_values() -> None:
    ci = wilson_interval(10, 20)
    assert ci.low == pytest.approx(0.29930, abs=1e-4) and ci.high == pytest.approx(0.70070, abs=1e-4)
    ci = wilson_interval(8, 10)
    assert ci.low == pytest.approx(0.49016, abs=1e-4) and ci.high == pytest.approx(0.94332, abs=1e-4)
    assert wilson_interval(0, 0).low == 0.0
    same = bootstrap_interval([(5, 10)] * 8)
    assert same.low == same.high == 0.5  # raters who all agree: no between-rater spread
    split = bootstrap_interval([(10, 10), (0, 10)] * 4)
    assert split.low < 0.3 and split.high > 0.7  # raters who disagree completely: a wide interval


def test_results_on_constructed_answers() -> None:
    pairs = [{"id": f"p{i:04d}", "kind": "compare", "a_side": "left" if i % 2 else "right"} for i in range(10)]
    pairs += [{"id": "p0010", "kind": "check", "correct": "left"}, {"id": "p0011", "kind": "check", "correct": "right"}]
    for p in pairs[:10]:
        p.update(a="g3an", b="vgan")
    manifest = {"methods": {"g3an": {}, "vgan": {}}, "comparisons": [["g3an", "vgan"]], "pairs": pairs}
    answers = []
    for rater, n_a in (("r1", 8), ("r2", 2)):  # r1 prefers A in 8 of 10 pairs, r2 in 2
        for i, p in enumerate(pairs[:10]):
            other = "right" if p["a_side"] == "left" else "left"
            answers.append(Answer(rater, p["id"], p["a_side"] if i < n_a else other, ""))
        answers += [Answer(rater, "p0010", "left", ""), Answer(rater, "p0011", "right", "")]
    # r3 fails its check and always picks A: excluded with the default threshold
    answers += [Answer("r3", p["id"], p["a_side"], "") for p in pairs[:10]] + [Answer("r3", "p0010", "right", "")]
    res = analyse(manifest, answers)
    assert res.rows[0].preference_a == pytest.approx(0.5) and res.rows[0].answers == 20 and res.rows[0].raters == 2
    assert res.rows[0].wilson.low == pytest.approx(0.29930, abs=1e-4)
    assert res.excluded == ["r3"] and res.checks["answers"] == 5 and res.checks["correct"] == 4
    kept = analyse(manifest, answers, min_check_pass=0.0)
    assert kept.rows[0].preference_a == pytest.approx(20 / 30) and kept.rows[0].raters == 3


def test_results_cli_after_answers(running: Running, fresh_study: Path) -> None:
    for pick in ("left", "right"):
        rate(running, running.json("POST", "/api/rater", {})[1]["rater"], pick=pick)
    result = CliRunner().invoke(main, ["study", "results", str(fresh_study), "--min-check-pass", "0"])
    assert result.exit_code == 0, result.output
    assert "| g3an | real | 50.0 |" in result.output  # one rater always left, one always right
    assert "2 raters answered; attention checks" in result.output and "0 raters excluded" in result.output
    data = json.loads((fresh_study / "results.json").read_text())
    row = data["studies"][0]["rows"][0]
    assert row["answers"] == 2 * PAIRS and row["raters"] == 2
    assert (fresh_study / "results.md").read_text().count("| g3an | real |") == 1
    rows = list(csv.DictReader((fresh_study / "answers.csv").open()))
    assert len(rows) == len(load_manifest(fresh_study)["pairs"]) * 2
    compare = [r for r in rows if r["kind"] == "compare"]
    assert {r["method_a"] for r in compare} == {"g3an"} and sum(int(r["chose_a"]) for r in compare) == PAIRS
    assert all(r["class_left"] == r["class_right"] for r in compare) and all(r["excluded"] == "0" for r in rows)
    checks = [p for p in load_manifest(fresh_study)["pairs"] if p["kind"] == "check"]
    failing = {side for side in ("left", "right") if any(p["correct"] != side for p in checks)}
    default = study_results(fresh_study)  # raters who missed a check are excluded
    assert len(default.excluded) == len(failing) and default.rows[0].raters == 2 - len(failing)
    assert default.checks["answers"] == 2 * len(checks)


def test_results_of_several_studies_one_row_each(study_dir: Path, tmp_path: Path) -> None:
    for name in ("one", "two"):
        shutil.copytree(study_dir, tmp_path / name, ignore=shutil.ignore_patterns(DB_FILE + "*", "results.*"))
    result = CliRunner().invoke(main, ["study", "results", str(tmp_path / "one"), str(tmp_path / "two"),
                                       "--out", str(tmp_path / "table")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.count("| g3an | real | - |") == 2  # no answers yet
    assert len(json.loads((tmp_path / "table" / "results.json").read_text())["studies"]) == 2


def test_port_in_use(running: Running) -> None:
    result = CliRunner().invoke(main, ["study", "serve", str(running.server.study), "--port", str(running.port)])
    assert result.exit_code == 2 and "--port" in result.output and "Traceback" not in result.output


def test_cli_errors_name_the_flag(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["study", "serve", str(tmp_path)])
    assert result.exit_code != 0 and "study.json" in result.output
    result = CliRunner().invoke(main, ["study", "create", "--a", str(tmp_path / "nope"), "--b", str(tmp_path),
                                       "--out", str(tmp_path / "s")])  # fmt: skip
    assert result.exit_code == 2 and "--a" in result.output


# -- browser ---------------------------------------------------------------------------------------
def test_headless_chromium_answers_by_clicking(running: Running) -> None:
    total = len(running.server.pairs)
    browser = start_browser()
    try:
        browser.s("POST", "/url", {"url": f"http://127.0.0.1:{running.port}/"})
        seen = []
        for i, action in enumerate(["#choose-left", "#choose-right", "1", "ArrowRight"]):
            pair = browser.wait("const b = document.getElementById('choose-left');"
                                "return !b.disabled && document.getElementById('pair').dataset.pair;")  # fmt: skip
            assert pair not in seen
            seen.append(pair)
            assert browser.js("return document.getElementById('progress').textContent") == f"{i} / {total} answered"
            # the H.264 videos decode and play in the browser
            browser.wait("const l = document.getElementById('left'), r = document.getElementById('right');"
                         "return l.readyState >= 2 && r.readyState >= 2 && !l.paused && !r.paused")  # fmt: skip
            if action.startswith("#"):
                browser.click(action)
            else:
                browser.key("\ue012" if action == "ArrowLeft" else "\ue014" if action == "ArrowRight" else action)
            browser.wait(f"return document.getElementById('progress').textContent === '{i + 1} / {total} answered'")
        rater = browser.js("return window.localStorage.getItem('g3an-study-rater')")
    finally:
        browser.close()
    answers = StudyDB(running.server.study / DB_FILE, readonly=True).answers()
    assert [(a.rater, a.pair, a.choice) for a in answers] == [
        (rater, seen[0], "left"),
        (rater, seen[1], "right"),
        (rater, seen[2], "left"),
        (rater, seen[3], "right"),
    ]
