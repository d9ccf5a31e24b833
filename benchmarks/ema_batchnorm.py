"""Diagnostic: what the EMA generator's BatchNorm statistics do to its FID.

The EMA generator averages the trained generator's weights, but until 2026-12-08 it was saved with the
trained generator's BatchNorm running statistics, which describe other weights. Since then training
recomputes them from the EMA generator's own samples before it saves, samples or evaluates it
(``TrainConfig.ema_bn_videos``, :func:`g3an.train.ema.standing_statistics`).

For each training checkpoint this prints the embedded FID of: the EMA generator with the statistics the
checkpoint holds, the EMA generator with recomputed statistics, and the trained generator with its own
statistics and with recomputed ones. Recomputing uses ``--bn-videos`` videos in batches of the run's batch
size, seed 0, as training does; with ``--pairs`` the batches' rows share the appearance code two by two,
as in a run with ``appearance_consistency``. Exports and shipped models (no trained generator, no batch
size recorded) get the first two columns, in batches of ``--train-batch``.

    python benchmarks/ema_batchnorm.py runs/paper-tables-3000/runs/actions/*/checkpoints/step-00003000.pt \\
        --data runs/shipped/data/synth-actions-32 --kind actions
    python benchmarks/ema_batchnorm.py synth-faces --data runs/shipped/data/synth-faces-32 --kind faces \\
        --n 512 --train-batch 16 --pairs
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def main() -> None:
    from g3an.checkpoint import load_checkpoint, load_generator
    from g3an.data.format import open_dataset
    from g3an.metrics.cache import StatsCache
    from g3an.metrics.protocols import get_protocol
    from g3an.metrics.runner import evaluate_generator, load_extractor
    from g3an.train.ema import standing_statistics

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+", help="training checkpoints (.pt) with EMA weights, exports or shipped "
                   "models' names")  # fmt: skip
    p.add_argument("--data", required=True, help="the prepared dataset the runs trained on")
    p.add_argument("--kind", choices=("actions", "faces"), required=True, help="embedded evaluator")
    p.add_argument("--n", type=int, default=256, help="generated videos per FID (default: 256)")
    p.add_argument("--bn-videos", type=int, default=256, help="videos the statistics are recomputed from")
    p.add_argument("--batch", type=int, default=32, help="videos per forward when evaluating (default: 32, as "
                   "paper_tables.py, whose FID of each run the first column then repeats)")  # fmt: skip
    p.add_argument("--train-batch", type=int, default=16, help="batch of the recomputation where the file "
                   "does not record the run's (default: 16)")  # fmt: skip
    p.add_argument("--pairs", action="store_true", help="rows 2i and 2i+1 share the appearance code")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    dataset = open_dataset(args.data)
    protocol = get_protocol(f"fid2048_embedded_{args.kind}")
    extractor = load_extractor(protocol.extractor, None, "cpu")
    cache = StatsCache(Path("/tmp/g3an-ema-batchnorm-stats"))

    def fid(generator: torch.nn.Module) -> float:
        result = evaluate_generator(generator, dataset, protocol, extractor, num_fake=args.n, seed=0,
                                    batch=args.batch, cache=cache, progress=False)  # fmt: skip
        return round(result.value, 1)

    for path in args.checkpoints:
        training = str(path).endswith(".pt")
        batch = (
            int(load_checkpoint(path).get("train_config", {}).get("batch_size") or 8) if training else args.train_batch
        )
        row: dict[str, object] = {"checkpoint": path}
        for ema in (True, False) if training else (True,):
            name = "ema" if ema else "trained"
            _, _, generator, _ = load_generator(path, ema=ema)
            pair = generator.appearance_latent if args.pairs else None
            row[f"{name}, saved statistics"] = fid(generator)
            standing_statistics(generator, args.bn_videos, batch, seed=0, pair=pair)
            row[f"{name}, recomputed"] = fid(generator)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
