"""``g3an study results``: mean preference per pair of methods with 95% confidence intervals (Table 2).

For each pair of methods (A, B) a study compares, every answer to one of their pairs is 1 when the
rater chose A's video and 0 when B's. Reported per pair of methods (one row of the table):

- ``preference_a``: the mean over all kept answers (the paper's number, in %);
- ``wilson``: the Wilson score 95% interval of that proportion, treating answers as independent;
- ``bootstrap``: a 95% percentile interval from a rater-clustered bootstrap (raters resampled with
  replacement, each bringing all their answers; the statistic is the pooled mean), which accounts for
  raters differing in taste. It is the wider and more honest of the two when raters answer many pairs;
- the numbers of raters and answers kept.

Attention checks (a clean video against a broken copy) give each rater a pass rate; raters whose pass
rate is below ``min_check_pass`` are excluded (raters who saw no check are kept and counted).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from g3an.study.create import load_manifest
from g3an.study.db import DB_FILE, Answer, StudyDB

__all__ = ["Interval", "PreferenceRow", "analyse", "bootstrap_interval", "export_answers", "format_table",
           "load_answers", "study_results", "wilson_interval", "write_results"]  # fmt: skip

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Interval:
    """A confidence interval of a proportion, both ends in [0, 1]."""

    low: float
    high: float


def wilson_interval(successes: int, n: int, z: float = Z95) -> Interval:
    """The Wilson score interval of ``successes / n`` (``[0, 1]`` when ``n`` is 0)."""
    if n <= 0:
        return Interval(0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def bootstrap_interval(per_rater: Sequence[tuple[int, int]], n_boot: int = 2000, seed: int = 0,
                       level: float = 0.95) -> Interval:  # fmt: skip
    """Percentile interval of the pooled proportion, resampling raters with replacement.

    Args:
        per_rater: ``(successes, answers)`` of each rater.
        n_boot: bootstrap resamples.
        seed: seed of the resampling.
        level: coverage.
    """
    counts = np.array([c for c in per_rater if c[1] > 0], dtype=np.float64).reshape(-1, 2)
    if len(counts) == 0:
        return Interval(0.0, 1.0)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(counts), size=(n_boot, len(counts)))
    sums = counts[idx].sum(axis=1)  # (n_boot, 2)
    stats = sums[:, 0] / sums[:, 1]
    alpha = (1 - level) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return Interval(float(low), float(high))


@dataclass
class PreferenceRow:
    """One row of the table: method A against method B in one study."""

    study: str
    method_a: str
    method_b: str
    preference_a: float | None
    wilson: Interval
    bootstrap: Interval
    raters: int
    answers: int


@dataclass
class StudyResults:
    """Everything ``g3an study results`` reports for one study.

    Attributes:
        rows: one preference row per pair of methods compared (in the manifest's order).
        checks: attention checks: answers, correct ones, pass rate, per-rater counts.
        excluded: ids of raters excluded for failing attention checks.
        raters_total: raters with at least one answer.
        min_check_pass: the exclusion threshold used.
    """

    rows: list[PreferenceRow]
    checks: dict[str, Any] = field(default_factory=dict)
    excluded: list[str] = field(default_factory=list)
    raters_total: int = 0
    min_check_pass: float = 1.0


def analyse(manifest: dict[str, Any], answers: Sequence[Answer], study: str = "", min_check_pass: float = 1.0,
            n_boot: int = 2000, seed: int = 0) -> StudyResults:  # fmt: skip
    """Preference of A over B for each compared pair of methods, and attention-check statistics."""
    pairs = {p["id"]: p for p in manifest["pairs"]}
    comparisons = [tuple(c) for c in manifest.get("comparisons", [])]
    checks: dict[str, list[int]] = {}
    prefs: dict[tuple[str, str], dict[str, list[int]]] = {c: {} for c in comparisons}
    for ans in answers:
        pair = pairs.get(ans.pair)
        if pair is None:
            continue
        if pair["kind"] == "check":
            checks.setdefault(ans.rater, []).append(int(ans.choice == pair["correct"]))
        else:
            key = (pair["a"], pair["b"])
            prefs.setdefault(key, {}).setdefault(ans.rater, []).append(int(ans.choice == pair["a_side"]))
    rates = {r: sum(v) / len(v) for r, v in checks.items()}
    excluded = sorted(r for r, rate in rates.items() if rate < min_check_pass)
    rows = []
    for (method_a, method_b), by_rater in prefs.items():
        kept = {r: v for r, v in by_rater.items() if r not in excluded}
        per_rater = [(sum(v), len(v)) for v in kept.values()]
        k = sum(x for x, _ in per_rater)
        n = sum(m for _, m in per_rater)
        rows.append(PreferenceRow(
            study=study,
            method_a=method_a,
            method_b=method_b,
            preference_a=k / n if n else None,
            wilson=wilson_interval(k, n),
            bootstrap=bootstrap_interval(per_rater, n_boot=n_boot, seed=seed),
            raters=len(kept),
            answers=n,
        ))  # fmt: skip
    n_checks = sum(len(v) for v in checks.values())
    correct = sum(sum(v) for v in checks.values())
    check_info = {
        "answers": n_checks,
        "correct": correct,
        "pass_rate": correct / n_checks if n_checks else None,
        "per_rater": {r: {"answers": len(v), "correct": sum(v)} for r, v in sorted(checks.items())},
    }
    raters = set(checks).union(*(set(v) for v in prefs.values()))
    return StudyResults(rows, check_info, excluded, len(raters), min_check_pass)


def load_answers(study: str | Path) -> list[Answer]:
    """Every answer stored for ``study`` (none when no server has run yet); the database is opened read-only."""
    db_path = Path(study) / DB_FILE
    if not db_path.is_file():
        return []
    db = StudyDB(db_path, readonly=True)
    try:
        return db.answers()
    finally:
        db.close()


def study_results(study: str | Path, min_check_pass: float = 1.0, n_boot: int = 2000, seed: int = 0) -> StudyResults:
    """:func:`analyse` the answers stored in ``STUDY/answers.sqlite`` (none yet: an empty row)."""
    manifest = load_manifest(study)
    answers = load_answers(study)
    return analyse(manifest, answers, str(study), min_check_pass, n_boot, seed)


def export_answers(study: str | Path, out: str | Path, excluded: Sequence[str] = ()) -> int:
    """Write every answer of ``study`` as CSV, one row per answer, for analyses of one's own.

    Columns: ``rater, pair, kind, method_a, method_b, a_side, choice, chose_a`` (comparison pairs),
    ``correct`` (attention checks), ``class_left, class_right, created, elapsed_ms, excluded``.

    Returns:
        The number of answers written.
    """
    import csv
    import io

    from g3an.checkpoint import atomic_write

    manifest = load_manifest(study)
    pairs = {p["id"]: p for p in manifest["pairs"]}
    media = manifest["media"]
    answers = load_answers(study)
    columns = ["rater", "pair", "kind", "method_a", "method_b", "a_side", "choice", "chose_a", "correct",
               "class_left", "class_right", "created", "elapsed_ms", "excluded"]  # fmt: skip
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, lineterminator="\n")
    writer.writeheader()
    n = 0
    for ans in answers:
        pair = pairs.get(ans.pair)
        if pair is None:
            continue
        compare = pair["kind"] == "compare"
        writer.writerow({
            "rater": ans.rater, "pair": ans.pair, "kind": pair["kind"],
            "method_a": pair.get("a", ""), "method_b": pair.get("b", ""), "a_side": pair.get("a_side", ""),
            "choice": ans.choice, "chose_a": int(ans.choice == pair["a_side"]) if compare else "",
            "correct": "" if compare else int(ans.choice == pair["correct"]),
            "class_left": media[pair["left"]].get("class") or "",
            "class_right": media[pair["right"]].get("class") or "",
            "created": ans.created, "elapsed_ms": "" if ans.elapsed_ms is None else ans.elapsed_ms,
            "excluded": int(ans.rater in excluded),
        })  # fmt: skip
        n += 1
    text = buf.getvalue()
    atomic_write(out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return n


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def format_table(results: Sequence[StudyResults]) -> str:
    """A Markdown table, one row per compared pair of methods of each study (as the paper's Table 2).

    The attention-check columns are per study (repeated on each of its rows).
    """
    lines = [
        "| Method A | Method B | Preference for A (%) | 95% CI, Wilson | 95% CI, rater bootstrap | Raters | Answers "
        "| Checks passed | Raters excluded |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for res in results:
        c = res.checks
        checks = f"{c['correct']}/{c['answers']}" if c.get("answers") else "-"
        for r in res.rows:
            wilson = f"[{_pct(r.wilson.low)}, {_pct(r.wilson.high)}]" if r.answers else "-"
            boot = f"[{_pct(r.bootstrap.low)}, {_pct(r.bootstrap.high)}]" if r.answers else "-"
            lines.append(
                f"| {r.method_a} | {r.method_b} | {_pct(r.preference_a)} | {wilson} | {boot} | "
                f"{r.raters} | {r.answers} | {checks} | {len(res.excluded)} |"
            )
    return "\n".join(lines)


def write_results(results: Sequence[StudyResults], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.md`` to ``out_dir``; returns their paths."""
    from g3an.checkpoint import atomic_write

    out_dir = Path(out_dir)
    records = [asdict(r) for r in results]
    json_path, md_path = out_dir / "results.json", out_dir / "results.md"
    text = json.dumps({"format": "g3an-study-results", "confidence": 0.95, "studies": records}, indent=1) + "\n"
    atomic_write(json_path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    thr = results[0].min_check_pass if results else 1.0
    md = (
        "# Human preference study\n\nPreference for A = share of answers choosing method A's video. "
        "Wilson: score interval over answers; rater bootstrap: 2.5/97.5 percentiles of the pooled "
        f"preference over raters resampled with replacement. Raters passing under {100 * thr:.0f}% of "
        "their attention checks are excluded.\n\n" + format_table(results) + "\n"
    )
    atomic_write(md_path, lambda tmp: Path(tmp).write_text(md, encoding="utf-8"))
    return json_path, md_path
