"""synth-faces: the six MUG expressions (Aifanti et al., 2010) on frontal cartoon faces.

The embedded analogue of the MUG facial-expression dataset that G3AN (Wang et al., CVPR 2020) trains
on; see ``spec/synthetic.md``. A face is drawn from a handful of parametric curves (outline, hair,
brows, lids, iris, nose, lips) whose expression parameters follow a smooth trajectory from neutral
to the apex of the video's expression and, for some videos, back. The head sways slightly and the
eyes blink; the shoulders and the background stay still.

Appearance (fixed per subject): face shape, skin, hair colour and style, eye colour, eyebrow
thickness, glasses, moustache, clothes, background, and small continuous proportions (face width,
eye spacing and size, nose and mouth size). Motion nuisances (per video): onset, ramp duration,
apex intensity, return to neutral, head sway, blinks, gaze.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from g3an.data.synthetic.common import (
    CLOTHES,
    HAIR_COLOR,
    SKIN,
    Scene,
    make_rng,
    mix,
    pick,
    shade,
    smoothstep,
    uniform,
    upsample,
)

__all__ = ["APPEARANCE_FACTORS", "CLASSES", "FPS", "MOTION_FACTORS", "render", "sample_appearance", "sample_motion"]

CLASSES = ("happiness", "sadness", "surprise", "anger", "disgust", "fear")
FPS = 19.0  # MUG's frame rate

FACE_SHAPE = {  # aspect (height / width), superellipse exponent, chin taper
    "oval": (1.3, 2.2, 0.3),
    "round": (1.12, 2.3, 0.14),
    "square": (1.2, 3.4, 0.14),
    "heart": (1.24, 2.5, 0.46),
    "long": (1.42, 2.4, 0.26),
}
HAIR_STYLE = ("short", "long", "bob", "curly", "bald")
EYE_COLOR = {
    "brown": (112, 70, 36),
    "dark": (52, 36, 28),
    "blue": (62, 118, 190),
    "green": (70, 130, 72),
    "grey": (124, 136, 146),
    "hazel": (146, 112, 52),
}
GLASSES = ("none", "round", "square")
BACKGROUND = {
    "white": (236, 236, 232),
    "grey": (150, 152, 156),
    "blue": (120, 160, 210),
    "green": (150, 196, 150),
    "yellow": (236, 220, 150),
    "pink": (232, 180, 196),
    "teal": (96, 168, 170),
    "dark": (62, 64, 74),
}

#: Appearance factors: name -> categories (a list), the (low, high) range of a continuous value, or bool.
APPEARANCE_FACTORS: dict[str, Any] = {
    "face_shape": list(FACE_SHAPE),
    "skin": list(SKIN),
    "hair_color": list(HAIR_COLOR),
    "hair_style": list(HAIR_STYLE),
    "eye_color": list(EYE_COLOR),
    "brow_thickness": (0.6, 1.6),
    "glasses": list(GLASSES),
    "moustache": [False, True],
    "clothes": list(CLOTHES),
    "background": list(BACKGROUND),
    "face_width": (0.92, 1.08),
    "eye_spacing": (0.92, 1.08),
    "eye_size": (0.85, 1.15),
    "nose_size": (0.8, 1.2),
    "mouth_size": (0.85, 1.15),
}
#: Motion nuisances, per video.
MOTION_FACTORS: dict[str, Any] = {
    "onset": (0, 10),
    "ramp": (8.0, 24.0),
    "intensity": (0.65, 1.0),
    "returns": [False, True],
    "hold": (8.0, 24.0),
    "release": (10.0, 20.0),
    "sway_x": (0.0, 0.025),
    "sway_y": (0.0, 0.012),
    "sway_angle": (0.0, 0.07),
    "sway_period": (30.0, 90.0),
    "sway_phase": (0.0, 1.0),
    "blinks": "frames at which a blink starts",
    "gaze": (-0.4, 0.4),
}

#: Expression parameters at the apex of each class (neutral is 0 everywhere).
APEX: dict[str, dict[str, float]] = {
    "happiness": {"smile": 1.0, "open": 0.35, "width": 0.35, "teeth": 1.0, "eye": -0.35, "lower_lid": 0.6,
                  "brow": 0.1},
    "sadness": {"smile": -0.9, "width": -0.15, "brow_inner": 0.9, "brow": -0.15, "eye": -0.3, "pout": 0.6},
    "surprise": {"brow": 1.0, "eye": 1.0, "open": 1.0, "width": -0.4},
    "anger": {"brow": -0.75, "brow_inner": -1.0, "eye": -0.1, "lower_lid": 0.4, "smile": -0.35, "width": -0.1,
              "open": 0.2, "teeth": 1.0, "wrinkle": 0.3},
    "disgust": {"wrinkle": 1.0, "upper_lip": 0.9, "asym": 0.7, "smile": -0.45, "eye": -0.45, "lower_lid": 0.5,
                "brow": -0.45, "brow_inner": -0.3, "open": 0.12, "teeth": 0.6},
    "fear": {"brow": 0.75, "brow_inner": 0.85, "eye": 0.95, "open": 0.55, "width": 0.5, "smile": -0.35,
             "teeth": 0.6},
}  # fmt: skip
PARAMS = ("smile", "open", "width", "teeth", "eye", "lower_lid", "brow", "brow_inner", "pout", "wrinkle",
          "upper_lip", "asym")  # fmt: skip

_DARK = (34, 26, 24)
ZOOM = 1.2  # pixels per face unit, per pixel of image size


def sample_appearance(rng: np.random.Generator) -> dict[str, Any]:
    """One subject: every appearance factor (categorical ones by name)."""

    def uni(name: str) -> float:
        return uniform(rng, APPEARANCE_FACTORS[name])

    return {
        "face_shape": pick(rng, list(FACE_SHAPE)),
        "skin": pick(rng, list(SKIN)),
        "hair_color": pick(rng, list(HAIR_COLOR)),
        "hair_style": pick(rng, HAIR_STYLE),
        "eye_color": pick(rng, list(EYE_COLOR)),
        "brow_thickness": uni("brow_thickness"),
        "glasses": "none" if rng.random() < 0.6 else pick(rng, GLASSES[1:]),
        "moustache": bool(rng.random() < 0.3),
        "clothes": pick(rng, list(CLOTHES)),
        "background": pick(rng, list(BACKGROUND)),
        "face_width": uni("face_width"),
        "eye_spacing": uni("eye_spacing"),
        "eye_size": uni("eye_size"),
        "nose_size": uni("nose_size"),
        "mouth_size": uni("mouth_size"),
        "detail_seed": int(rng.integers(2**31)),
    }


def sample_motion(rng: np.random.Generator, label: int, frames: int = 64) -> dict[str, Any]:
    """The motion nuisances of one video of class ``label`` with ``frames`` frames."""
    del label  # every expression draws the same nuisances

    def uni(name: str) -> float:
        return uniform(rng, MOTION_FACTORS[name])

    onset = int(rng.integers(MOTION_FACTORS["onset"][0], MOTION_FACTORS["onset"][1] + 1))
    n_blinks = int(rng.integers(0, 3 + frames // 48))
    return {
        "onset": onset,
        "ramp": uni("ramp"),
        "intensity": uni("intensity"),
        "returns": bool(rng.random() < 0.35),
        "hold": uni("hold"),
        "release": uni("release"),
        "sway_x": uni("sway_x"),
        "sway_y": uni("sway_y"),
        "sway_angle": uni("sway_angle"),
        "sway_period": uni("sway_period"),
        "sway_phase": uni("sway_phase"),
        "blinks": sorted(int(b) for b in rng.integers(0, max(1, frames - 2), n_blinks)),
        "gaze": uni("gaze"),
    }


def expression_track(motion: dict[str, Any], label: int, frames: int) -> dict[str, np.ndarray]:
    """Expression parameters ``(T,)`` per frame: neutral, ramp to the apex, hold and optionally release."""
    t = np.arange(frames, dtype=np.float64)
    level = smoothstep((t - motion["onset"]) / motion["ramp"])
    if motion["returns"]:
        start = motion["onset"] + motion["ramp"] + motion["hold"]
        level = level * (1 - smoothstep((t - start) / motion["release"]))
    level = level * motion["intensity"]
    apex = APEX[CLASSES[label]]
    track = {p: apex.get(p, 0.0) * level for p in PARAMS}
    blink = np.zeros(frames)
    for b in motion["blinks"]:
        blink = np.maximum(blink, np.interp(t, [b - 0.5, b + 1, b + 2.5], [0, 1, 0], left=0, right=0))
    track["blink"] = blink
    return track


def _sway(motion: dict[str, Any], frames: int, size: int, pivot: np.ndarray) -> np.ndarray:
    """Per-frame similarity transforms ``(T, 2, 3)``: a small rotation about ``pivot`` plus a shift (pixels)."""
    ph = 2 * math.pi * (np.arange(frames) / motion["sway_period"] + motion["sway_phase"])
    ang = motion["sway_angle"] * np.sin(ph)
    dx = motion["sway_x"] * size * np.sin(ph + 0.7)
    dy = motion["sway_y"] * size * np.sin(2 * ph)
    c, s = np.cos(ang), np.sin(ang)
    m = np.zeros((frames, 2, 3))
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    m[:, :, 2] = pivot - np.einsum("tij,j->ti", m[:, :, :2], pivot) + np.stack([dx, dy], -1)
    return m


class _Head:
    """Maps face coordinates (origin at the face centre, y down, ``unit`` pixels per unit) to pixels."""

    def __init__(self, unit: float, center: tuple[float, float], transform: np.ndarray) -> None:
        self.unit, self.center, self.m = unit, np.asarray(center, np.float64), transform

    def __call__(self, pts: np.ndarray) -> np.ndarray:
        """``(N, 2)`` or ``(T, N, 2)`` face coordinates -> ``(T, N, 2)`` pixels."""
        p = np.asarray(pts, np.float64) * self.unit + self.center
        x, y = p[..., 0], p[..., 1]  # (N,) or (T, N)
        m = self.m[:, :, :, None]  # (T, 2, 3, 1)
        return np.stack(
            [m[:, 0, 0] * x + m[:, 0, 1] * y + m[:, 0, 2], m[:, 1, 0] * x + m[:, 1, 1] * y + m[:, 1, 2]], -1
        )

    def point(self, xy: np.ndarray) -> np.ndarray:
        """``(2,)`` or ``(T, 2)`` face coordinates -> ``(T, 2)`` pixels."""
        return self(np.asarray(xy, np.float64)[..., None, :])[:, 0]

    def px(self, length: float) -> float:
        """A length in face units, in pixels."""
        return length * self.unit


def _curve(xs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Stack x ``(N,)`` and y ``(T, N)`` into points ``(T, N, 2)``."""
    return np.stack([np.broadcast_to(xs, y.shape), y], -1)


def _outline(shape: str, a: float) -> np.ndarray:
    """Face outline ``(N, 2)`` of half-width ``a`` (face units)."""
    aspect, n, taper = FACE_SHAPE[shape]
    b = a * aspect
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    x = a * np.sign(c) * np.abs(c) ** (2 / n)
    y = b * np.sign(s) * np.abs(s) ** (2 / n)
    x = x * (1 - taper * np.clip(y / b, 0, 1) ** 2)  # narrower towards the chin
    return np.stack([x, y], -1)


def _hair(style: str, a: float, b: float, rng: np.random.Generator) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(back hair, front hair) polygons in face units, or ``None``."""
    top = np.linspace(np.pi + 0.1, 2 * np.pi - 0.1, 25)  # over the head, left to right
    cap = np.stack([1.1 * a * np.cos(top), -0.1 * b + 1.06 * b * np.sin(top)], -1)
    if style == "bald":
        tufts = []
        for s in (-1, 1):
            t = np.linspace(0, 2 * np.pi, 12, endpoint=False)
            tufts.append(np.stack([s * 0.97 * a + 0.05 * a * np.cos(t), -0.15 * b + 0.16 * b * np.sin(t)], -1))
        return None, np.stack(tufts)
    if style == "curly":
        t = np.linspace(np.pi * 0.92, np.pi * 2.08, 40)
        bumps = 1 + 0.06 * np.cos(t * 14 + rng.uniform(0, 2 * np.pi))
        outer = np.stack([1.28 * a * np.cos(t) * bumps, -0.05 * b + 1.2 * b * np.sin(t) * bumps], -1)
        line = np.array([[0.95 * a, -0.05 * b], [0.55 * a, -0.42 * b], [0.0, -0.52 * b], [-0.55 * a, -0.42 * b],
                         [-0.95 * a, -0.05 * b]])  # fmt: skip
        return None, np.concatenate([outer, line])[None]
    part = rng.uniform(-0.4, 0.4)
    fringe_y = {"short": -0.6, "long": -0.55, "bob": -0.38}[style] * b
    hairline = np.array([[1.02 * a, -0.22 * b], [0.86 * a, -0.36 * b], [0.72 * a, fringe_y * 0.9],
                         [part * a, fringe_y], [-0.72 * a, fringe_y * 0.9], [-0.86 * a, -0.36 * b],
                         [-1.02 * a, -0.22 * b]])  # fmt: skip
    if style == "bob":
        hairline = np.array([[1.06 * a, 0.35 * b], [0.88 * a, -0.2 * b], [0.6 * a, fringe_y], [-0.6 * a, fringe_y],
                             [-0.88 * a, -0.2 * b], [-1.06 * a, 0.35 * b]])  # fmt: skip
    front = np.concatenate([cap, hairline])[None]
    back = None
    if style == "long":
        t = np.linspace(np.pi * 0.95, np.pi * 2.05, 25)
        back = np.concatenate([np.stack([1.2 * a * np.cos(t), 1.1 * b * np.sin(t)], -1),
                               np.array([[1.25 * a, 1.25 * b], [-1.25 * a, 1.25 * b]])])  # fmt: skip
    elif style == "bob":
        t = np.linspace(np.pi * 0.9, np.pi * 2.1, 25)
        back = np.concatenate([np.stack([1.16 * a * np.cos(t), 1.05 * b * np.sin(t)], -1),
                               np.array([[1.18 * a, 0.62 * b], [-1.18 * a, 0.62 * b]])])  # fmt: skip
    return back, front


def _backdrop(app: dict[str, Any], size: int, ss: int, center: tuple[float, float], b: float,
              a: float) -> Image.Image:  # fmt: skip
    """The still part of every frame, supersampled: background gradient, neck and shoulders.

    Args:
        app: appearance.
        size: output size in pixels.
        ss: supersampling factor.
        center: face centre in pixels.
        b: face half-height in pixels.
        a: face half-width in pixels.
    """
    base = np.asarray(BACKGROUND[app["background"]], np.float64)
    yy, xx = np.mgrid[0:size, 0:size] / size
    light = 1.08 - 0.25 * np.hypot(xx - 0.5, yy - 0.35)
    img = Image.fromarray(upsample(np.clip(base * light[:, :, None], 0, 255).astype(np.uint8), ss))
    skin = shade(SKIN[app["skin"]], 0.8)
    sc = Scene(1, ss)
    cx, chin = center[0], center[1] + b
    sh_y = chin + 0.22 * a
    neck = 0.36 * a
    sc.polygon(np.array([[cx - neck, center[1]], [cx + neck, center[1]], [cx + neck * 1.08, sh_y + 0.1 * a],
                         [cx - neck * 1.08, sh_y + 0.1 * a]]), skin)  # fmt: skip
    w = 1.9 * a
    sc.polygon(np.array([[cx - w, size * 1.1], [cx - w * 0.96, sh_y + 0.45 * a], [cx - w * 0.62, sh_y],
                         [cx + w * 0.62, sh_y], [cx + w * 0.96, sh_y + 0.45 * a], [cx + w, size * 1.1]]),
               CLOTHES[app["clothes"]])  # fmt: skip
    t = np.linspace(0, np.pi, 12)
    sc.polygon(np.stack([cx + neck * 1.08 * np.cos(t), sh_y - 0.02 * a + 0.22 * a * np.sin(t)], -1), skin)
    sc.draw(img, 0)
    return img


def render(appearance: dict[str, Any], motion: dict[str, Any], label: int, size: int = 64, frames: int = 64,
           supersample: int = 4) -> np.ndarray:  # fmt: skip
    """Draw one video.

    Args:
        appearance: from :func:`sample_appearance`.
        motion: from :func:`sample_motion`.
        label: index into :data:`CLASSES`.
        size: frame height and width in pixels.
        frames: number of frames.
        supersample: anti-aliasing factor (edges get ``supersample**2`` coverage levels).

    Returns:
        ``(frames, size, size, 3)`` uint8 RGB.
    """
    app = appearance
    e = expression_track(motion, label, frames)
    skin = SKIN[app["skin"]]
    hair = HAIR_COLOR[app["hair_color"]]
    a = 0.235 * app["face_width"]
    b = a * FACE_SHAPE[app["face_shape"]][0]
    unit = ZOOM * size  # pixels per face unit
    center = (0.5 * size, 0.5 * size - max(0.0, b - 0.3) * unit)
    head = _Head(unit, center, _sway(motion, frames, size, np.array([0.5 * size, center[1] + b * unit])))
    sc = Scene(frames, supersample)
    detail = make_rng(int(app["detail_seed"]), 0, 0)  # hair parting, curls: part of the subject
    back, front = _hair(app["hair_style"], a, b, detail)
    if back is not None:
        sc.polygon(head(back), shade(hair, 0.85))
    for s in (-1, 1):  # ears
        sc.ellipse(head.point([s * 0.97 * a, 0.02 * b]), head.px(0.028), head.px(0.05), shade(skin, 0.88), n=16)
    outline = _outline(app["face_shape"], a)
    sc.polygon(head(outline * 1.035), shade(skin, 0.68))  # a thin darker rim keeps the face apart from hair
    sc.polygon(head(outline), skin)

    _draw_eyes(sc, head, app, e, a, b, motion["gaze"])
    _draw_brows(sc, head, app, e, a, b, hair)
    _draw_nose(sc, head, app, e, b, skin)
    _draw_mouth(sc, head, app, e, b, skin, hair)
    if front is not None:
        for poly in front:
            sc.polygon(head(poly), hair)
    if app["glasses"] != "none":
        _draw_glasses(sc, head, app, a, b)
    return sc.render(_backdrop(app, size, supersample, center, b * unit, a * unit))


def _draw_eyes(sc: Scene, head: _Head, app: dict[str, Any], e: dict[str, np.ndarray], a: float, b: float,
               gaze: float) -> None:  # fmt: skip
    ew = 0.052 * app["eye_size"]  # half-width
    base_h = 0.027 * app["eye_size"]  # upper-lid height when neutral
    open_up = np.clip(1 + 0.65 * e["eye"] - 0.9 * e["blink"], 0.04, 2.0) * (1 - e["blink"] * 0.96)
    open_lo = np.clip(1 - 0.5 * e["lower_lid"] - 0.9 * e["blink"] + 0.15 * np.clip(e["eye"], 0, 1), 0.04, 2.0)
    ey = -0.02 * b / 0.3
    iris_color = EYE_COLOR[app["eye_color"]]
    ir = 0.02 * app["eye_size"]
    ring = np.linspace(0, 2 * np.pi, 18, endpoint=False)
    for s in (-1, 1):
        ex = s * 0.4 * a * app["eye_spacing"]

        def lids(x: np.ndarray, ex: float = ex, s: int = s) -> tuple[np.ndarray, np.ndarray]:
            """Upper and lower lid heights ``(T, N)`` above face x positions ``x`` (``(N,)`` or ``(T, N)``)."""
            xn = np.clip((x - ex) / ew, -1, 1)
            prof = (1 - xn**2) ** 0.8
            return (ey - base_h * open_up[:, None] * prof * (1 + 0.15 * xn * s),
                    ey + 0.75 * base_h * open_lo[:, None] * prof)  # fmt: skip

        x = ex + ew * np.linspace(-1, 1, 13)
        upper, lower = lids(x)
        sc.polygon(head(np.concatenate([_curve(x, upper), _curve(x[::-1], lower[:, ::-1])], 1)), (250, 250, 248))
        # Iris and pupil: disks clipped to the opening by clamping their outlines between the lids.
        c = np.array([ex + gaze * 0.4 * ew, ey + 0.003])
        for radius, color in ((ir, iris_color), (0.45 * ir, (16, 14, 14))):
            px = np.broadcast_to(c[0] + radius * np.cos(ring), (len(open_up), len(ring)))
            up, lo = lids(px)
            py = np.clip(c[1] + radius * np.sin(ring)[None], up, lo)
            sc.polygon(head(np.stack([px, py], -1)), color)
        glint = c + np.array([0.3 * ir, -0.35 * ir])
        sc.circle(head.point(glint), head.px(0.2 * ir), (255, 255, 255), visible=open_up > 0.6)
        sc.line(head(_curve(x, upper)), head.px(0.008), _DARK)


def _draw_brows(sc: Scene, head: _Head, app: dict[str, Any], e: dict[str, np.ndarray], a: float, b: float,
                hair: tuple[int, int, int]) -> None:  # fmt: skip
    ey = -0.02 * b / 0.3
    thick = 0.011 * app["brow_thickness"]
    color = shade(hair, 0.75) if sum(hair) > 300 else hair
    t = np.linspace(0, 1, 9)
    for s in (-1, 1):
        xi, xo = s * 0.13 * a, s * 0.72 * a * app["eye_spacing"]
        base = ey - 0.062 - 0.032 * e["brow"][:, None]
        inner_lift = -0.034 * e["brow_inner"][:, None]
        y = (
            base
            + inner_lift * (1 - t)[None]
            + 0.004 * t[None]
            - (0.014 + 0.01 * np.clip(e["brow"], 0, 1))[:, None] * (4 * t * (1 - t))[None]
        )
        x = xi + (xo - xi) * t
        w = thick * (1.15 - 0.55 * t)
        pts = np.concatenate([_curve(x, y - w[None] / 2), _curve(x[::-1], (y + w[None] / 2)[:, ::-1])], 1)
        sc.polygon(head(pts), color)


def _draw_nose(sc: Scene, head: _Head, app: dict[str, Any], e: dict[str, np.ndarray], b: float,
               skin: tuple[int, int, int]) -> None:  # fmt: skip
    ns = app["nose_size"]
    ny = 0.5 * b * 0.45
    sc.ellipse(head.point([0.0, ny]), head.px(0.03 * ns), head.px(0.016 * ns), shade(skin, 0.8), n=16)
    for s in (-1, 1):
        sc.circle(head.point([s * 0.014 * ns, ny + 0.006]), head.px(0.006 * ns), shade(skin, 0.55))
    bridge = np.array([[0.012, ny - 0.075], [0.016, ny - 0.03], [0.02 * ns, ny - 0.008]])
    sc.line(head(bridge), head.px(0.005), shade(skin, 0.86))
    wrinkle = e["wrinkle"]
    for s in (-1, 1):
        for k in range(2):
            pts = np.array([[s * (0.018 + 0.012 * k), ny - 0.05 + 0.008 * k], [s * (0.034 + 0.012 * k), ny - 0.034]])
            col = mix(skin, shade(skin, 0.5), 0.8)
            sc.line(head(pts), head.px(0.005), col, visible=wrinkle > 0.35 + 0.2 * k)


def _draw_mouth(sc: Scene, head: _Head, app: dict[str, Any], e: dict[str, np.ndarray], b: float,
                skin: tuple[int, int, int], hair: tuple[int, int, int]) -> None:  # fmt: skip
    xs = np.linspace(-1, 1, 15)
    ms = app["mouth_size"]
    mw = 0.072 * ms * (1 + 0.28 * e["width"])[:, None]
    cy = 0.5 * b + 0.015
    corner = (0.03 * e["smile"])[:, None] + (0.016 * e["asym"])[:, None] * np.clip(xs, 0, 1)[None]
    mid = cy - corner * xs[None] ** 2 + 0.006 * e["pout"][:, None] * (1 - xs[None] ** 2)
    hump = (1 - xs**2) ** 0.7
    opening = (0.075 * e["open"])[:, None] * hump[None]
    raise_up = (0.02 * e["upper_lip"])[:, None] * (1 - xs**2)[None] * (1 + 0.6 * np.clip(xs, 0, 1))[None]
    inner_up = mid - 0.35 * opening - raise_up
    inner_lo = mid + 0.65 * opening + (0.008 * e["pout"])[:, None] * hump[None]
    outer_up = inner_up - 0.011 * np.sqrt(1 - xs**2)[None] - 0.002
    outer_lo = inner_lo + 0.015 * np.sqrt(1 - xs**2)[None] + 0.002
    x = mw * xs[None]

    def pts(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
        return np.concatenate([np.stack([x, top], -1), np.stack([x[:, ::-1], bottom[:, ::-1]], -1)], 1)

    lips = mix(shade(skin, 0.72), (190, 70, 80), 0.45)
    if app["moustache"]:
        mo = np.concatenate([np.stack([1.2 * x, outer_up - 0.004], -1),
                             np.stack([1.25 * x[:, ::-1], (outer_up - 0.03 - 0.004 * xs[None] ** 2)[:, ::-1]], -1)],
                            1)  # fmt: skip
    sc.polygon(head(pts(outer_up, outer_lo)), lips)
    visible = e["open"] > 0.04
    sc.polygon(head(pts(inner_up, inner_lo)), (70, 24, 30), visible=visible)
    teeth_lo = np.minimum(inner_up + 0.45 * (inner_lo - inner_up) * e["teeth"][:, None] + 0.004, inner_lo)
    sc.polygon(head(pts(inner_up, teeth_lo)), (246, 244, 236), visible=visible & (e["teeth"] > 0.1))
    sc.line(head(np.stack([x, mid], -1)), head.px(0.005), shade(lips, 0.6), visible=~visible)
    if app["moustache"]:
        sc.polygon(head(mo), shade(hair, 0.8) if sum(hair) > 300 else hair)


def _draw_glasses(sc: Scene, head: _Head, app: dict[str, Any], a: float, b: float) -> None:
    ey = -0.02 * b / 0.3
    rx, ry = 0.075 * app["eye_size"], 0.055 * app["eye_size"]
    frame = (38, 34, 34)
    width = head.px(0.011)
    for s in (-1, 1):
        ex = s * 0.4 * a * app["eye_spacing"]
        if app["glasses"] == "round":
            t = np.linspace(0, 2 * np.pi, 25)
            ring = np.stack([ex + rx * np.cos(t), ey + ry * np.sin(t)], -1)
        else:
            ring = np.array([[ex - rx, ey - ry], [ex + rx, ey - ry], [ex + rx, ey + 0.8 * ry], [ex + 0.7 * rx, ey + ry],
                             [ex - 0.7 * rx, ey + ry], [ex - rx, ey + 0.8 * ry], [ex - rx, ey - ry]])  # fmt: skip
        sc.line(head(ring), width, frame)
        sc.line(head(np.array([[ex + s * rx, ey - 0.2 * ry], [s * 0.97 * a, ey - 0.35 * ry]])), width, frame)
    bridge = np.array([[-0.4 * a * app["eye_spacing"] + rx, ey - 0.25 * ry], [0.0, ey - 0.4 * ry],
                       [0.4 * a * app["eye_spacing"] - rx, ey - 0.25 * ry]])  # fmt: skip
    sc.line(head(bridge), width, frame)
