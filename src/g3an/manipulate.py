"""Latent manipulation: the paper's qualitative experiments (Figures 6-11) as grids of videos.

Every mode builds a :class:`~g3an.sample.LatentPlan` (a ``rows x cols`` grid with labels and the exact
latents of each cell) from the generator's latent shapes alone; :func:`manipulate` renders it into a
``(R, C, 3, T, H, W)`` tensor in [-1, 1]. The layout follows the paper's figures: **rows are
appearances (z_a), columns are motions (z_m)** or, where one code is swept, the values of the sweep.

Codes come from per-purpose streams of the seed: appearance ``i`` is the i-th draw of the
``appearance`` stream and motion ``j`` the j-th draw of the ``motion`` stream in every mode, so with
one seed, ``vary-motion`` is row 0 of ``grid`` and the diagonal of ``add`` holds grid cells (0, 0) and
(1, 1).

Modes:

* ``vary-motion``: one appearance, ``n`` motions (1 x n; Figure 6).
* ``vary-appearance``: one motion, ``n`` appearances (n x 1).
* ``grid``: ``rows`` appearances x ``cols`` motions.
* ``dim``: one dimension of z_a or z_m swept over ``values`` (columns), rows with other base codes
  (Figures 9, 10).
* ``add``: rows z_a0, z_a1, z_a0 + z_a1 x columns z_m0, z_m1 (Figure 11).
* ``interpolate``: columns from one code to another (lerp or slerp) of z_a or z_m, one pair per row.
* ``classes``: rows of appearances through every class (columns), or with ``label`` several motions
  within that class (Figures 7, 8).
* ``length``: rows of appearances at several lengths (16, 20, 24, ... frames), one motion per row
  whose first latent steps are shared by all lengths.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from g3an.models.base import VideoGenerator
from g3an.sample import (
    LatentBatch,
    LatentPlan,
    SamplingError,
    check_frames,
    check_precision,
    class_label,
    draw_latents,
    load_for_sampling,
    output_paths,
    render,
    resolve_class,
    write_plan,
)
from g3an.train.sampler import derive_seed

__all__ = [
    "MODES",
    "Manipulation",
    "lerp",
    "manipulate",
    "manipulate_checkpoint",
    "plan_add",
    "plan_classes",
    "plan_dim",
    "plan_grid",
    "plan_interpolate",
    "plan_length",
    "plan_vary_appearance",
    "plan_vary_motion",
    "slerp",
]


@dataclass
class Manipulation:
    """A rendered manipulation grid.

    Attributes:
        videos: ``(R, C, 3, T, H, W)`` float32 in [-1, 1] on the CPU.
        plan: the layout, labels and exact latents (save it with :func:`g3an.sample.save_latents`).
    """

    videos: torch.Tensor
    plan: LatentPlan

    @property
    def row_labels(self) -> list[str] | None:
        return self.plan.row_labels

    @property
    def col_labels(self) -> list[str] | None:
        return self.plan.col_labels

    @property
    def latents(self) -> list[LatentBatch]:
        return self.plan.batches


# -- interpolation ----------------------------------------------------------------------------------
def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Linear interpolation ``(1 - t) a + t b``."""
    return (1.0 - t) * a + t * b


def slerp(a: torch.Tensor, b: torch.Tensor, t: float, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation between codes ``a`` and ``b`` of shape ``(N, ...)``, each flattened to a vector.

    Follows the great circle between the two directions and interpolates the norms linearly, so every
    intermediate code keeps a norm typical of a Gaussian sample; (nearly) parallel codes fall back to
    :func:`lerp`. ``t = 0`` gives ``a`` and ``t = 1`` gives ``b``.
    """
    fa, fb = a.reshape(a.shape[0], -1).double(), b.reshape(b.shape[0], -1).double()
    na, nb = fa.norm(dim=1, keepdim=True), fb.norm(dim=1, keepdim=True)
    ua, ub = fa / na.clamp_min(eps), fb / nb.clamp_min(eps)
    omega = torch.arccos((ua * ub).sum(1, keepdim=True).clamp(-1.0, 1.0))
    sin = torch.sin(omega)
    direction = (torch.sin((1.0 - t) * omega) * ua + torch.sin(t * omega) * ub) / sin.clamp_min(eps)
    out = direction * lerp(na, nb, t)
    out = torch.where(sin > 1e-6, out, lerp(fa, fb, t))
    return out.to(a.dtype).reshape(a.shape)


INTERPOLATIONS: dict[str, Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]] = {
    "lerp": lerp,
    "slerp": slerp,
}


# -- helpers ----------------------------------------------------------------------------------------
CODES = ("appearance", "motion")


def _code_name(generator: VideoGenerator, which: str, mode: str) -> str:
    """The latent name carrying ``which`` (appearance / motion); a clear error if the model has none."""
    if which not in CODES:
        raise SamplingError(f"code must be one of {', '.join(CODES)}, got {which!r}", "--code")
    name = generator.appearance_latent if which == "appearance" else generator.motion_latent
    if name is None:
        raise SamplingError(
            f"mode {mode!r} needs a separate {which} code, but {type(generator).__name__} has none "
            f"(appearance code: {generator.appearance_latent}, motion code: {generator.motion_latent})"
        )
    return name


def _both(generator: VideoGenerator, mode: str) -> tuple[str, str]:
    return _code_name(generator, "appearance", mode), _code_name(generator, "motion", mode)


def _codes(generator: VideoGenerator, which: str, n: int, frames: int, seed: int, stream: str = "") -> torch.Tensor:
    """The first ``n`` codes ``(n, ...)`` of the appearance or motion stream of ``seed``."""
    name = _code_name(generator, which, "")
    return draw_latents(generator, n, frames, seed, stream or which)[name]


def _grid_label(generator: VideoGenerator, label: int | None, seed: int) -> int | None:
    """The class of every cell: ``label``, or one class drawn from the seed for a conditional model."""
    if not generator.num_classes:
        if label is not None:
            raise SamplingError("a class was given, but this generator is unconditional", "--class")
        return None
    if label is not None:
        if not 0 <= label < generator.num_classes:
            raise SamplingError(f"class index {label} out of range 0..{generator.num_classes - 1}", "--class")
        return int(label)
    gen = torch.Generator().manual_seed(derive_seed(seed, "grid-label"))
    return int(torch.randint(generator.num_classes, (1,), generator=gen))


def _batch(
    generator: VideoGenerator,
    frames: int,
    seed: int,
    cells: list[tuple[int, int]],
    codes: dict[str, torch.Tensor],
    labels: Sequence[int | None] | int | None,
    stream: str = "other",
) -> LatentBatch:
    """A batch for ``cells``: the given ``codes`` ``(N, ...)``, the model's other latents from ``stream``."""
    n = len(cells)
    latents = draw_latents(generator, n, frames, seed, stream)
    for name, value in codes.items():
        if tuple(value.shape) != tuple(latents[name].shape):
            raise ValueError(f"{name}: shape {tuple(value.shape)}, expected {tuple(latents[name].shape)}")
        latents[name] = value.to(torch.float32).contiguous()
    if isinstance(labels, int) or labels is None:
        y = None if labels is None else torch.full((n,), labels, dtype=torch.long)
    else:
        y = torch.tensor(list(labels), dtype=torch.long)
    return LatentBatch(frames, cells, latents, y)


def _row_major(rows: int, cols: int) -> list[tuple[int, int]]:
    return [(r, c) for r in range(rows) for c in range(cols)]


def _title(mode: str, seed: int, frames: int | None, label: int | None, class_names: Sequence[str] | None) -> str:
    parts = [mode, f"seed {seed}"]
    if frames is not None:
        parts.append(f"{frames} frames")
    if label is not None:
        parts.append(class_label(label, class_names))
    return ", ".join(parts)


def _positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise SamplingError(f"{name} must be >= 1, got {value}", f"--{name}")


# -- modes ------------------------------------------------------------------------------------------
def plan_grid(
    generator: VideoGenerator,
    rows: int = 4,
    cols: int = 4,
    seed: int = 0,
    frames: int | None = None,
    label: int | None = None,
    class_names: Sequence[str] | None = None,
    batch_size: int = 16,
    mode: str = "grid",
) -> LatentPlan:
    """``rows`` appearances x ``cols`` motions: cell (i, j) is appearance i with motion j."""
    _positive(rows=rows, cols=cols)
    a, m = _both(generator, mode)
    frames = check_frames(generator, frames)
    label = _grid_label(generator, label, seed)
    za = _codes(generator, "appearance", rows, frames, seed)
    zm = _codes(generator, "motion", cols, frames, seed)
    codes = {a: za.repeat_interleave(cols, 0), m: zm.repeat(rows, *([1] * (zm.ndim - 1)))}
    batch = _batch(generator, frames, seed, _row_major(rows, cols), codes, label)
    return LatentPlan(
        mode=mode,
        rows=rows,
        cols=cols,
        batches=[batch],
        row_labels=[f"{a} #{i}" for i in range(rows)],
        col_labels=[f"{m} #{j}" for j in range(cols)],
        seed=seed,
        params={"rows": rows, "cols": cols, "frames": frames, "class": label},
        title=_title(mode, seed, frames, label, class_names),
        batch_size=batch_size,
    )


def plan_vary_motion(generator: VideoGenerator, n: int = 6, **kw: Any) -> LatentPlan:
    """One appearance (row) with ``n`` motions (columns): Figure 6. Keywords as :func:`plan_grid`."""
    _positive(n=n)
    return plan_grid(generator, rows=1, cols=n, mode="vary-motion", **kw)


def plan_vary_appearance(generator: VideoGenerator, n: int = 6, **kw: Any) -> LatentPlan:
    """One motion (column) under ``n`` appearances (rows). Keywords as :func:`plan_grid`."""
    _positive(n=n)
    return plan_grid(generator, rows=n, cols=1, mode="vary-appearance", **kw)


def _sweep_values(values: Sequence[float] | None, low: float, high: float, steps: int) -> list[float]:
    if values is not None:
        out = [float(v) for v in values]
        if not out:
            raise SamplingError("values must not be empty", "--values")
        return out
    _positive(steps=steps)
    return [low] if steps == 1 else [low + (high - low) * k / (steps - 1) for k in range(steps)]


def plan_dim(
    generator: VideoGenerator,
    code: str = "appearance",
    dim: int = 0,
    values: Sequence[float] | None = None,
    low: float = -3.0,
    high: float = 3.0,
    steps: int = 7,
    rows: int = 3,
    same_other: bool = False,
    seed: int = 0,
    frames: int | None = None,
    label: int | None = None,
    class_names: Sequence[str] | None = None,
    batch_size: int = 16,
) -> LatentPlan:
    """Sweep dimension ``dim`` of the appearance or motion code (Figures 9, 10).

    Row i starts from appearance i and motion i; column k sets dimension ``dim`` of the swept code to
    ``values[k]`` (for z_m, at every latent time step) and keeps everything else, so along a row only
    that dimension changes. ``same_other`` gives every row the same other code (appearance 0 or motion 0),
    so the rows differ only in the swept code.

    Args:
        code: ``appearance`` or ``motion``.
        dim: index along the code's first (feature) axis.
        values: values to set (standard-normal units); default ``steps`` values from ``low`` to ``high``.
        rows: number of base codes.
    """
    _positive(rows=rows)
    a, m = _both(generator, "dim")
    frames = check_frames(generator, frames)
    name = _code_name(generator, code, "dim")
    size = generator.latent_shapes(frames)[name][0]
    if not 0 <= dim < size:
        raise SamplingError(f"dimension {dim} out of range: {name} has dimensions 0..{size - 1}", "--dim")
    vals = _sweep_values(values, low, high, steps)
    label = _grid_label(generator, label, seed)
    cols = len(vals)
    za = _codes(generator, "appearance", rows, frames, seed)
    zm = _codes(generator, "motion", rows, frames, seed)
    if same_other:
        if name == a:
            zm = zm[:1].expand_as(zm)
        else:
            za = za[:1].expand_as(za)
    codes = {a: za.repeat_interleave(cols, 0).clone(), m: zm.repeat_interleave(cols, 0).clone()}
    swept = codes[name]
    swept[:, dim] = torch.tensor(vals, dtype=swept.dtype).repeat(rows).view(-1, *([1] * (swept.ndim - 2)))
    fixed_a, fixed_m = same_other and name == m, same_other and name == a
    row_labels = [f"{a} #{0 if fixed_a else i}, {m} #{0 if fixed_m else i}" for i in range(rows)]
    return LatentPlan(
        mode="dim",
        rows=rows,
        cols=cols,
        batches=[_batch(generator, frames, seed, _row_major(rows, cols), codes, label)],
        row_labels=row_labels,
        col_labels=[f"{v:+.2f}" for v in vals],
        seed=seed,
        params={
            "code": code,
            "dim": dim,
            "values": vals,
            "rows": rows,
            "same_other": same_other,
            "frames": frames,
            "class": label,
        },
        title=_title(f"dim: {name}[{dim}] set to each column's value", seed, frames, label, class_names),
        batch_size=batch_size,
    )


def plan_add(
    generator: VideoGenerator,
    renorm: bool = False,
    seed: int = 0,
    frames: int | None = None,
    label: int | None = None,
    class_names: Sequence[str] | None = None,
    batch_size: int = 16,
) -> LatentPlan:
    """Appearance addition (Figure 11): rows z_a0, z_a1, z_a0 + z_a1; columns z_m0, z_m1.

    The diagonal cells (z_a0, z_m0) and (z_a1, z_m1) are the two original videos; the last row shows the
    summed appearance with each original motion. ``renorm`` divides the sum by sqrt(2) (a standard-normal
    code again); the paper adds the codes as they are.
    """
    a, m = _both(generator, "add")
    frames = check_frames(generator, frames)
    label = _grid_label(generator, label, seed)
    za = _codes(generator, "appearance", 2, frames, seed)
    zm = _codes(generator, "motion", 2, frames, seed)
    total = za[0] + za[1]
    if renorm:
        total = total / math.sqrt(2.0)
    rows_a = torch.stack([za[0], za[1], total])
    codes = {a: rows_a.repeat_interleave(2, 0), m: zm.repeat(3, *([1] * (zm.ndim - 1)))}
    sum_label = f"{a} #0 + {a} #1" + (" (/sqrt 2)" if renorm else "")
    return LatentPlan(
        mode="add",
        rows=3,
        cols=2,
        batches=[_batch(generator, frames, seed, _row_major(3, 2), codes, label)],
        row_labels=[f"{a} #0", f"{a} #1", sum_label],
        col_labels=[f"{m} #0", f"{m} #1"],
        seed=seed,
        params={"renorm": renorm, "frames": frames, "class": label},
        title=_title("add", seed, frames, label, class_names),
        batch_size=batch_size,
    )


def plan_interpolate(
    generator: VideoGenerator,
    code: str = "appearance",
    steps: int = 8,
    method: str = "slerp",
    rows: int = 3,
    seed: int = 0,
    frames: int | None = None,
    label: int | None = None,
    class_names: Sequence[str] | None = None,
    batch_size: int = 16,
) -> LatentPlan:
    """Interpolate the appearance or motion code over ``steps`` columns (t = 0 .. 1).

    Row i goes from code i to code ``rows + i`` of the interpolated stream (so t = 0 is row i of
    :func:`plan_grid`'s appearances, or motion i) and keeps the other code i fixed.
    """
    _positive(rows=rows, steps=steps)
    if method not in INTERPOLATIONS:
        raise SamplingError(f"method must be one of {', '.join(INTERPOLATIONS)}, got {method!r}", "--method")
    a, m = _both(generator, "interpolate")
    frames = check_frames(generator, frames)
    name = _code_name(generator, code, "interpolate")
    label = _grid_label(generator, label, seed)
    ends = _codes(generator, code, 2 * rows, frames, seed)
    start, end = ends[:rows], ends[rows:]
    ts = [0.0] if steps == 1 else [k / (steps - 1) for k in range(steps)]
    path = torch.stack([INTERPOLATIONS[method](start, end, t) for t in ts], 1)  # (rows, steps, ...)
    other_name = m if name == a else a
    other = _codes(generator, "motion" if name == a else "appearance", rows, frames, seed)
    codes = {name: path.flatten(0, 1), other_name: other.repeat_interleave(steps, 0)}
    return LatentPlan(
        mode="interpolate",
        rows=rows,
        cols=steps,
        batches=[_batch(generator, frames, seed, _row_major(rows, steps), codes, label)],
        row_labels=[f"{name} #{i} -> #{rows + i}, {other_name} #{i}" for i in range(rows)],
        col_labels=[f"t={t:.2f}" for t in ts],
        seed=seed,
        params={"code": code, "steps": steps, "method": method, "rows": rows, "frames": frames, "class": label},
        title=_title(f"interpolate {name} ({method})", seed, frames, label, class_names),
        batch_size=batch_size,
    )


def plan_classes(
    generator: VideoGenerator,
    rows: int = 2,
    cols: int = 4,
    seed: int = 0,
    frames: int | None = None,
    label: int | None = None,
    class_names: Sequence[str] | None = None,
    batch_size: int = 16,
) -> LatentPlan:
    """Conditional models (Figures 7, 8).

    Without ``label``: rows of appearances, one column per class, all with motion 0 (each appearance
    performing every class). With ``label``: rows of appearances x ``cols`` motions, all of that class.
    """
    _positive(rows=rows, cols=cols)
    if not generator.num_classes:
        raise SamplingError("mode 'classes' needs a conditional generator; this one has no classes")
    a, m = _both(generator, "classes")
    if label is not None:
        plan = plan_grid(generator, rows, cols, seed, frames, label, class_names, batch_size, mode="classes")
        plan.params["within"] = label
        return plan
    frames = check_frames(generator, frames)
    k = generator.num_classes
    za = _codes(generator, "appearance", rows, frames, seed)
    zm = _codes(generator, "motion", 1, frames, seed)
    codes = {a: za.repeat_interleave(k, 0), m: zm.expand(rows * k, *zm.shape[1:]).clone()}
    labels = [c for _ in range(rows) for c in range(k)]
    return LatentPlan(
        mode="classes",
        rows=rows,
        cols=k,
        batches=[_batch(generator, frames, seed, _row_major(rows, k), codes, labels)],
        row_labels=[f"{a} #{i}" for i in range(rows)],
        col_labels=[class_label(c, class_names) for c in range(k)],
        seed=seed,
        params={"rows": rows, "frames": frames, "motion": 0},
        title=_title(f"classes, {m} #0", seed, frames, None, class_names),
        batch_size=batch_size,
    )


def plan_length(
    generator: VideoGenerator,
    lengths: Sequence[int] = (16, 20, 24, 32),
    rows: int = 2,
    fresh_motion: bool = False,
    seed: int = 0,
    label: int | None = None,
    class_names: Sequence[str] | None = None,
    batch_size: int = 16,
) -> LatentPlan:
    """The same videos at several lengths: rows of appearance i + motion i, one column per length.

    Motion i is drawn for the longest length and each column uses its first latent time steps (for
    G3AN, z_m[:, :, :T_z] for 16 + 4 (T_z - 1) frames), so all lengths start from the same motion code.
    ``fresh_motion`` draws an independent motion code per length instead, as the reference code's
    ``demo_multilength.py``. Shorter videos hold their last frame in a rendered grid.
    """
    _positive(rows=rows)
    a, m = _both(generator, "length")
    lengths = [check_frames(generator, f, "--lengths") for f in lengths]
    if not lengths or len(set(lengths)) != len(lengths):
        raise SamplingError(f"lengths must be distinct and non-empty, got {list(lengths)}", "--lengths")
    label = _grid_label(generator, label, seed)
    longest = max(lengths)
    za = _codes(generator, "appearance", rows, longest, seed)
    zm_long = _codes(generator, "motion", rows, longest, seed)
    batches = []
    for j, f in enumerate(lengths):
        shape = generator.latent_shapes(f)[m]
        prefix = tuple(shape[:-1]) == tuple(zm_long.shape[1:-1]) and shape[-1] <= zm_long.shape[-1]
        if prefix and not fresh_motion:
            zm = zm_long[..., : shape[-1]].contiguous()  # the first latent time steps
        else:
            zm = _codes(generator, "motion", rows, f, seed, stream=f"motion-{f}")
        cells = [(i, j) for i in range(rows)]
        batches.append(_batch(generator, f, seed, cells, {a: za, m: zm}, label, stream=f"other-{f}"))
    return LatentPlan(
        mode="length",
        rows=rows,
        cols=len(lengths),
        batches=batches,
        row_labels=[f"{a} #{i}, {m} #{i}" for i in range(rows)],
        col_labels=[f"{f} frames" for f in lengths],
        seed=seed,
        params={"lengths": lengths, "rows": rows, "fresh_motion": fresh_motion, "class": label},
        title=_title("length", seed, None, label, class_names),
        batch_size=batch_size,
    )


#: mode name -> plan function (keywords: the function's arguments)
MODES: dict[str, Callable[..., LatentPlan]] = {
    "vary-motion": plan_vary_motion,
    "vary-appearance": plan_vary_appearance,
    "grid": plan_grid,
    "dim": plan_dim,
    "add": plan_add,
    "interpolate": plan_interpolate,
    "classes": plan_classes,
    "length": plan_length,
}


def manipulate(
    generator: VideoGenerator, mode: str, device: str | torch.device | None = None, **params: Any
) -> Manipulation:
    """Build the plan of ``mode`` (see :data:`MODES`) with ``params`` and render it.

    Example:
        >>> out = manipulate(G, "grid", rows=2, cols=3, seed=0)
        >>> out.videos.shape  # (2, 3, 3, 16, 64, 64)
    """
    if mode not in MODES:
        raise SamplingError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
    plan = MODES[mode](generator, **params)
    return Manipulation(render(generator, plan, device), plan)


def manipulate_checkpoint(
    checkpoint: str | Path,
    mode: str,
    out: str | Path,
    class_: str | int | None = None,
    fps: float = 8.0,
    ema: bool = True,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    **params: Any,
) -> tuple[Path, Path]:
    """``g3an manipulate CKPT MODE`` as a function: render a mode's grid to ``out`` with its latents file.

    Args:
        checkpoint: training checkpoint (.pt) or exported generator (.safetensors).
        mode: one of :data:`MODES`.
        out: ``.mp4``, ``.gif`` or ``.png`` (filmstrips) file.
        class_: class name or index for conditional models (``classes``: the class to stay within).
        fps: frame rate of MP4 / GIF (frames per second).
        ema: use the EMA generator weights when the checkpoint has them.
        device: device to run the generator on.
        precision: ``fp32`` or ``bf16`` / ``fp16`` (CUDA) autocast (:attr:`g3an.sample.LatentPlan.precision`).
        **params: the mode's keywords (``seed``, ``frames``, ``rows``, ``dim``, ...; see the plan functions).

    Returns:
        ``(media_path, latents_path)``.

    Raises:
        SamplingError: a bad argument (``param`` names its flag).
        g3an.checkpoint.CheckpointError: a missing or invalid checkpoint.
    """
    if mode not in MODES:
        raise SamplingError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}", "MODE")
    check_precision(precision)
    if output_paths(out, 1) is not None:
        raise SamplingError(f"{out}: a manipulation writes one grid file; use a name without {{i}}", "--out")
    loaded = load_for_sampling(checkpoint, ema=ema, device=device)
    gen, names = loaded.generator, loaded.class_names
    label = resolve_class(class_, gen.num_classes, names)
    plan = dataclasses.replace(MODES[mode](gen, label=label, class_names=names, **params), precision=precision)
    return write_plan(out, plan, render(gen, plan), loaded.ref, names, fps)
