"""``g3an study``: a human preference study as in the paper's Table 2 (create, serve, results)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from g3an.cli import main


@contextmanager
def _errors() -> Iterator[None]:
    """Library errors as click errors naming the flag they come from."""
    from g3an.study.create import StudyError

    try:
        yield
    except StudyError as err:
        if err.param:
            raise click.BadParameter(str(err), param_hint=f"'{err.param}'") from None
        raise click.ClickException(str(err)) from None


@click.group("study")
def study() -> None:
    """A two-alternative human preference study: "Which video clip is more realistic?".

    \b
    1. g3an study create --a runs/g3an --b vgan=runs/vgan --b real=data/uva-nemo --same-class --out study1
    2. g3an study serve study1 --port 8000          (send raters to http://HOST:8000/)
    3. g3an study results study1                    (Table 2: mean preference with 95% CIs)
    """


def _method(value: str) -> tuple[str | None, Path]:
    """``NAME=PATH`` or ``PATH`` (an existing path containing ``=`` is taken as a path)."""
    name, sep, path = value.partition("=")
    if sep and name and not Path(value).exists() and all(c.isalnum() or c in "-_." for c in name):
        return name, Path(path)
    return None, Path(value)


@study.command("create")
@click.option("--a", "a", required=True, multiple=True, metavar="[NAME=]CKPT_OR_DIR",
              help="Method A: a checkpoint, exported .safetensors, run directory, or a prepared dataset directory "
                   "(real videos); NAME= names it in the table.  Repeat to compare several methods.")  # fmt: skip
@click.option("--b", "b", required=True, multiple=True, metavar="[NAME=]CKPT_OR_DIR",
              help="Method B, as --a; each A is compared with each B (--b vgan=runs/vgan --b real=data).")  # fmt: skip
@click.option("--out", required=True, type=click.Path(path_type=Path), metavar="STUDY",
              help="The study directory to create.")  # fmt: skip
@click.option("--pairs", type=click.IntRange(min=1, max=100_000), default=50, show_default=True, metavar="N",
              help="Comparison pairs per pair of methods (A vs B).")  # fmt: skip
@click.option("--same-class", is_flag=True, help="Both videos of a pair show the same class (both sides need labels).")
@click.option("--checks", type=click.FloatRange(min=0, max=1, max_open=True), default=0.1, show_default=True,
              metavar="FRACTION", help="Attention-check pairs (clean vs broken video) added, per pair.")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, metavar="S",
              help="Seed of every random choice (videos, latents, order, sides).")  # fmt: skip
@click.option("--frames", type=click.IntRange(min=1), default=None, metavar="T",
              help="Frames per video.  [default: the model's]")  # fmt: skip
@click.option("--fps", type=click.FloatRange(min=0.5, max=120), default=8.0, show_default=True, metavar="FPS",
              help="Frame rate of the model videos (real videos keep their dataset's).")  # fmt: skip
@click.option("--size", type=click.IntRange(min=8, max=1024), default=None, metavar="PX",
              help="Resize every video to PX x PX.  [default: the smallest frame size of the methods]")  # fmt: skip
@click.option("--split", default=None, metavar="NAME",
              help="Real videos only from this dataset split (e.g. test).  [default: all]")  # fmt: skip
@click.option("--question", default=None, metavar="TEXT",
              help="Question shown to raters.  [default: 'Which video clip is more realistic?']")  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Replace an existing STUDY directory (its answers too).")
def create_cmd(a: tuple[str, ...], b: tuple[str, ...], out: Path, pairs: int, same_class: bool, checks: float,
               seed: int, frames: int | None, fps: float, size: int | None, split: str | None, question: str | None,
               overwrite: bool) -> None:  # fmt: skip
    """Render the pairs of a study once into STUDY (videos, order and sides from a recorded seed).

    \b
    G3AN against real videos:  g3an study create --a runs/g3an --b data/uva-nemo --same-class --out s1
    Table 2 in one study:      g3an study create --a g3an=runs/g3an --b vgan=runs/vgan --b tgan=runs/tgan
                                 --b real=data/uva-nemo --pairs 50 --same-class --out table2
    """
    import torch

    from g3an.study.create import QUESTION, MediaSource, StudyOptions, create_study, open_source

    with _errors():
        if question is not None and not 0 < len(question.strip()) <= 300:
            raise click.BadParameter("must be 1 to 300 characters", param_hint="'--question'")
        cache: dict[tuple[str | None, Path], MediaSource] = {}

        def load(value: str, flag: str) -> MediaSource:
            key = _method(value)
            if key not in cache:  # the same method on both sides is loaded (and rendered) once
                cache[key] = open_source(key[1], key[0], flag, fps, split)
            return cache[key]

        side_a = [load(v, "--a") for v in a]
        side_b = [load(v, "--b") for v in b]
        options = StudyOptions(pairs=pairs, same_class=same_class, checks=checks, seed=seed, frames=frames, fps=fps,
                               size=(size, size) if size else None, question=question or QUESTION)  # fmt: skip
        with torch.inference_mode():
            manifest = create_study(out, side_a, side_b, options, overwrite=overwrite, progress=True)
    n_checks = sum(p["kind"] == "check" for p in manifest["pairs"])
    versus = ", ".join(f"{x} vs {y}" for x, y in manifest["comparisons"])
    click.echo(f"{out}: {pairs} pairs each of {versus}; {n_checks} attention check(s); {len(manifest['media'])} "
               f"videos; seed {seed}")  # fmt: skip
    click.echo(f"serve it with: g3an study serve {out}")


@study.command("serve")
@click.argument("study_dir", type=click.Path(path_type=Path), metavar="STUDY")
@click.option("--host", default="127.0.0.1", show_default=True, metavar="HOST",
              help="Address to listen on (0.0.0.0: every interface; see docs/study.md).")  # fmt: skip
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8000, show_default=True, metavar="P",
              help="Port (0: any free one).")  # fmt: skip
@click.option("--max-raters", type=click.IntRange(min=1), default=100_000, show_default=True, metavar="N",
              help="Rater registrations accepted in all (more are refused).")  # fmt: skip
@click.option("--max-connections", type=click.IntRange(min=1, max=10_000), default=256, show_default=True,
              metavar="N", help="Connections served at once (more are closed at once).")  # fmt: skip
def serve_cmd(study_dir: Path, host: str, port: int, max_raters: int, max_connections: int) -> None:
    """Serve STUDY to raters; answers go to STUDY/answers.sqlite as they come (Ctrl-C stops)."""
    from g3an.study.server import make_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with _errors():
        try:
            server = make_server(study_dir, host, port, max_raters, max_connections)
        except OSError as err:
            raise click.BadParameter(f"cannot listen on {host}:{port} ({err.strerror or err})",
                                     param_hint="'--host' / '--port'") from None  # fmt: skip
        except ValueError as err:
            raise click.ClickException(str(err)) from None
    click.echo(f"serving {study_dir} ({len(server.pairs)} pairs) at {server.url}  (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        server.server_close()


@study.command("results")
@click.argument("studies", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="STUDY...")
@click.option("--min-check-pass", type=click.FloatRange(min=0, max=1), default=1.0, show_default=True,
              metavar="RATE", help="Exclude raters passing fewer attention checks (0: keep all).")  # fmt: skip
@click.option("--bootstrap", type=click.IntRange(min=100, max=1_000_000), default=2000, show_default=True,
              metavar="B", help="Rater-bootstrap resamples.")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, metavar="S", help="Seed of the bootstrap.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="Where results.json and results.md go.  [default: the first STUDY]")  # fmt: skip
def results_cmd(studies: tuple[Path, ...], min_check_pass: float, bootstrap: int, seed: int, out: Path | None) -> None:
    """Print and write the table of mean preference per pair of methods compared in each STUDY."""
    from g3an.study.results import export_answers, format_table, study_results, write_results

    with _errors():
        results = [study_results(s, min_check_pass, bootstrap, seed) for s in studies]
    click.echo(format_table(results))
    for res in results:
        c = res.checks
        click.echo(f"{res.rows[0].study if res.rows else ''}: {res.raters_total} raters answered; attention checks "
                   f"{c['correct']}/{c['answers']} correct; {len(res.excluded)} raters excluded "
                   f"(check pass rate < {min_check_pass:g})")  # fmt: skip
    json_path, md_path = write_results(results, out or studies[0])
    click.echo(f"wrote {json_path} and {md_path}")
    for path, res in zip(studies, results):
        n = export_answers(path, Path(path) / "answers.csv", res.excluded)
        click.echo(f"wrote {Path(path) / 'answers.csv'} ({n} answers)")


main.add_command(study)
