"""``g3an eval``: FID / IS / FVD / KVD of a checkpoint against a prepared dataset, or the real-vs-real floor."""

from __future__ import annotations

import json
from pathlib import Path

import click

from g3an.cli import main

#: Short metric names and the protocols they stand for.
SHORT_NAMES = {
    "fid": "fid5000_resnext101_g3an",
    "is": "is_resnext101_ucf101",
    "fvd": "fvd2048_16f",
    "kvd": "kvd2048_16f",
}
#: Not a protocol: the disentanglement measures of the embedded datasets (docs/metrics.md section 12).
DISENTANGLE = "disentangle"


def _parse_weights(items: tuple[str, ...]) -> dict[str, Path]:
    out = {}
    for item in items:
        if "=" not in item:
            example = "resnext101_kinetics400=resnext-101-kinetics.pth"
            raise click.BadParameter(f"{item!r}: use EXTRACTOR=FILE, e.g. {example}", param_hint="--weights")
        name, path = item.split("=", 1)
        if not Path(path).is_file():
            raise click.BadParameter(f"{path}: no such file", param_hint="--weights")
        out[name] = Path(path)
    return out


@main.command("eval")
@click.argument("ckpt", required=False, type=click.Path(path_type=Path))
@click.option(
    "--data",
    "data",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    metavar="DIR",
    help="Prepared dataset with the real videos.",
)
@click.option(
    "--metrics",
    default="fvd",
    show_default=True,
    metavar="LIST",
    help=f"Comma-separated metrics: {', '.join(SHORT_NAMES)}, {DISENTANGLE} (embedded datasets) or full "
    "protocol names.",
)
@click.option(
    "--n",
    "num",
    type=click.IntRange(min=2),
    default=None,
    metavar="N",
    help="Generated (and, where the protocol samples them, real) videos; the metric name carries it.",
)
@click.option("--weights", "weights", multiple=True, metavar="EXTRACTOR=FILE",
              help="Extractor weights, e.g. resnext101_kinetics400=resnext-101-kinetics.pth; I3D defaults to the "
              "installed weights (`g3an weights install i3d`).")  # fmt: skip
@click.option("--real-vs-real", is_flag=True, help="Score two disjoint halves of the dataset against each other.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of latents, clip starts and subsets.")
@click.option("--batch", type=click.IntRange(min=1), default=16, show_default=True, help="Videos per forward.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--no-ema", is_flag=True, help="Evaluate the raw generator even when the checkpoint has EMA weights.")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE.json",
    help="Write the results (a JSON list) here; they are printed too.",
)
def eval_cmd(ckpt, data, metrics, num, weights, real_vs_real, seed, batch, device, no_ema, out) -> None:
    """Evaluate CKPT (a checkpoint, an exported .safetensors, a run directory or a shipped model's name) against
    the videos of --data."""
    from g3an.checkpoint import CheckpointError, load_generator
    from g3an.data.format import DatasetError, open_dataset
    from g3an.machine import keep_freed_for_command
    from g3an.metrics.cache import StatsCache
    from g3an.metrics.protocols import get_protocol
    from g3an.metrics.runner import evaluate_generator, evaluate_real_vs_real, load_extractor
    from g3an.train.distributed import resolve_device

    if ckpt is None and not real_vs_real:
        raise click.UsageError("give a checkpoint, or --real-vs-real for the floor of the dataset")
    import g3an.metrics.embedded  # noqa: F401  (registers the embedded protocols)

    keep_freed_for_command()

    names = [SHORT_NAMES.get(m.strip(), m.strip()) for m in metrics.split(",") if m.strip()]
    disentangle = DISENTANGLE in names
    if disentangle and real_vs_real:
        raise click.UsageError("--metrics disentangle needs a checkpoint, not --real-vs-real")
    try:
        protocols = [get_protocol(n) for n in names if n != DISENTANGLE]
    except KeyError as err:
        raise click.BadParameter(str(err.args[0]), param_hint="--metrics") from None
    paths = _parse_weights(weights)
    dev = resolve_device(device)
    try:
        dataset = open_dataset(data)
    except DatasetError as err:
        raise click.ClickException(str(err)) from None
    generator, digest = None, None
    if not real_vs_real:
        try:
            _, _, generator, _ = load_generator(ckpt, ema=not no_ema)
        except CheckpointError as err:
            raise click.ClickException(str(err)) from None
        from g3an.metrics.protocols import sha256_file
        from g3an.pretrained import resolve

        ckpt = resolve(str(ckpt))
        if Path(ckpt).is_dir():  # a run directory: its latest checkpoint, as load_generator chose
            from g3an.train.loop import latest_checkpoint

            ckpt = latest_checkpoint(ckpt)
        generator, digest = generator.to(dev), sha256_file(ckpt)
    results = []
    for protocol in protocols:
        try:
            extractor = load_extractor(protocol.extractor, paths.get(protocol.extractor.name), dev)
            if real_vs_real:
                result = evaluate_real_vs_real(dataset, protocol, extractor, seed=seed, batch=batch, num=num)
            else:
                result = evaluate_generator(generator, dataset, protocol, extractor, num_fake=num,
                                            num_real=num if protocol.num_real is not None else None, seed=seed,
                                            batch=batch, device=dev, checkpoint_sha256=digest,
                                            cache=StatsCache())  # fmt: skip
        except (ValueError, RuntimeError) as err:
            raise click.ClickException(f"{protocol.name}: {err}") from None
        results.append(result)
        std = f" +- {result.std:.4g}" if result.std is not None else ""
        click.echo(f"{result.metric}: {result.value:.4f}{std} ({result.num_fake} vs {result.num_real} videos)")
    records = [r.to_dict() for r in results]
    if disentangle:
        records += _disentangle(generator, dataset, num, seed, batch, dev, digest)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(records, indent=2) + "\n")
        click.echo(f"wrote {out}")


def _disentangle(generator: object, dataset: object, num: int | None, seed: int, batch: int, device: object,
                 digest: str | None) -> list[dict]:  # fmt: skip
    """The disentanglement measures with the dataset's embedded evaluator; ``--n`` shrinks the default counts."""
    from g3an.metrics.embedded import EMBEDDED_DATASETS, disentanglement_report, load_evaluator

    name = str(dataset.attributes.get("generator", ""))
    kind = name.removeprefix("synth-")
    if kind not in EMBEDDED_DATASETS:
        raise click.ClickException(f"disentangle needs an embedded dataset (g3an data synth), not {name or 'this one'}")
    try:
        report = disentanglement_report(generator, load_evaluator(kind, device=device),
                                        scale=max(1, 512 // num) if num else 1, seed=seed, batch=batch,
                                        device=device)  # fmt: skip
    except (ValueError, FileNotFoundError) as err:
        raise click.ClickException(f"disentangle: {err}") from None
    out = []
    for r in report:
        click.echo(f"{r.name}: {r.value:.4f}")
        out.append({"metric": f"disentangle/{r.name}", "value": r.value, "details": r.details,
                    "checkpoint_sha256": digest, "seed": seed})  # fmt: skip
    return out
