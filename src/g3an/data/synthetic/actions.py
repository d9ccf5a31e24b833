"""synth-actions: the ten Weizmann actions (Gorelick et al., 2007) performed by articulated 2D humanoids.

The embedded analogue of the Weizmann dataset that G3AN (Wang et al., CVPR 2020) trains on; see
``spec/synthetic.md``. A figure is a skeleton (pelvis, torso, neck, head, two-segment arms and legs,
hands, feet) posed per frame by a periodic joint-angle program of its action and drawn as filled
anti-aliased shapes over a textured background with a ground line. Side-view actions (bend, jump,
run, skip, walk) show the figure in profile, the others from the front. Actions that travel move the
figure across the image; a tracking camera takes the rest of the displacement, so the background
scrolls and the feet do not slide.

Appearance (fixed per subject): skin, hair colour and style, shirt and sleeves, trousers, height,
build, background colour and texture, floor. Motion nuisances (per video): period, phase,
amplitude, direction, start position, share of the travel shown as image motion.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from g3an.data.synthetic.common import (
    CLOTHES,
    HAIR_COLOR,
    SKIN,
    TEXTURES,
    Scene,
    background_texture,
    ellipse_points,
    make_rng,
    mix,
    pick,
    shade,
    smooth_noise,
    smoothstep,
    uniform,
    upsample,
)

__all__ = ["APPEARANCE_FACTORS", "CLASSES", "FPS", "MOTION_FACTORS", "render", "sample_appearance", "sample_motion"]

CLASSES = ("bend", "jack", "jump", "pjump", "run", "side", "skip", "walk", "wave1", "wave2")
FPS = 25.0  # Weizmann's frame rate

SIDE_VIEW = frozenset({"bend", "jump", "run", "skip", "walk"})

HAIR_STYLE = ("short", "long", "bald", "bun", "curly")
SHIRT = CLOTHES
SLEEVES = ("short", "long")
TROUSERS = {
    "black": (30, 30, 36),
    "navy": (34, 44, 92),
    "denim": (72, 104, 156),
    "khaki": (186, 164, 112),
    "grey": (122, 122, 128),
    "brown": (104, 72, 44),
    "olive": (96, 102, 50),
}
BACKGROUND = {
    "sky": (150, 196, 236),
    "sand": (226, 212, 172),
    "grass": (144, 188, 112),
    "concrete": (178, 178, 172),
    "brick": (172, 98, 76),
    "lilac": (192, 172, 216),
    "mint": (176, 226, 202),
    "peach": (242, 192, 160),
}
FLOOR = {
    "asphalt": (88, 88, 94),
    "lawn": (84, 138, 58),
    "sand": (202, 182, 132),
    "dirt": (132, 100, 70),
    "tiles": (198, 198, 204),
}
SHOES = (40, 34, 32)

#: Appearance factors: name -> categories (a list) or the (low, high) range of a continuous value.
APPEARANCE_FACTORS: dict[str, Any] = {
    "skin": list(SKIN),
    "hair_color": list(HAIR_COLOR),
    "hair_style": list(HAIR_STYLE),
    "shirt": list(SHIRT),
    "sleeves": list(SLEEVES),
    "trousers": list(TROUSERS),
    "height": (0.86, 1.1),
    "build": (0.8, 1.3),
    "background": list(BACKGROUND),
    "texture": list(TEXTURES),
    "floor": list(FLOOR),
    "ground": (0.84, 0.92),
}
#: Frames per action cycle: the range of each action.
PERIOD = {
    "bend": (30.0, 44.0),
    "jack": (14.0, 22.0),
    "jump": (20.0, 28.0),
    "pjump": (16.0, 24.0),
    "run": (10.0, 14.0),
    "side": (14.0, 20.0),
    "skip": (14.0, 20.0),
    "walk": (16.0, 24.0),
    "wave1": (10.0, 16.0),
    "wave2": (12.0, 18.0),
}

#: Motion nuisances, per video.
MOTION_FACTORS: dict[str, Any] = {
    "period": PERIOD,
    "phase": (0.0, 1.0),
    "amplitude": (0.8, 1.15),
    "direction": ["left", "right"],
    "start_x": (0.0, 1.0),
    "travel": (0.25, 0.5),
}


# Body proportions in units of the body height.
HEAD_R, NECK, TORSO = 0.068, 0.035, 0.29
UPPER_ARM, FOREARM, HAND_R = 0.165, 0.15, 0.031
THIGH, SHIN, FOOT_L = 0.235, 0.225, 0.075
ANKLE_H = 0.03
BASE_HEIGHT = 0.56  # body height / image height at height 1

Pose = dict[str, float]


def _keyframes(u: float, keys: list[tuple[float, Pose]]) -> Pose:
    """Cyclic smooth interpolation of keyframe poses at phases in ``[0, 1)`` (missing keys are 0)."""
    u = u % 1.0
    names = {k for _, p in keys for k in p}
    for (p0, a), (p1, b) in zip(keys, [*keys[1:], (keys[0][0] + 1.0, keys[0][1])]):
        if p0 <= u < p1 or (u < keys[0][0] and p1 > 1.0):
            t = float(smoothstep(((u if u >= p0 else u + 1.0) - p0) / (p1 - p0)))
            return {k: (1 - t) * a.get(k, 0.0) + t * b.get(k, 0.0) for k in names}
    return dict(keys[0][1])


def _scale(pose: Pose, rest: Pose, amp: float) -> Pose:
    return {k: rest.get(k, 0.0) + amp * (v - rest.get(k, 0.0)) for k, v in pose.items()}


def _walk(u: float, amp: float) -> Pose:
    s, c = math.sin(2 * math.pi * u), math.cos(2 * math.pi * u)

    def knee(x: float) -> float:
        return 0.08 + 0.95 * amp * max(0.0, x) ** 2

    return {"hip_a": 0.42 * amp * s, "knee_a": knee(c), "hip_b": -0.42 * amp * s, "knee_b": knee(-c),
            "sh_a": -0.4 * amp * s, "el_a": 0.3, "sh_b": 0.4 * amp * s, "el_b": 0.3, "lean": 0.05}  # fmt: skip


def _run(u: float, amp: float) -> Pose:
    s, c = math.sin(2 * math.pi * u), math.cos(2 * math.pi * u)

    def knee(x: float) -> float:
        return 0.3 + 1.55 * amp * max(0.0, x) ** 1.5

    return {"hip_a": 0.1 + 0.62 * amp * s, "knee_a": knee(c), "hip_b": 0.1 - 0.62 * amp * s, "knee_b": knee(-c),
            "sh_a": -0.65 * amp * s, "el_a": 1.5, "sh_b": 0.65 * amp * s, "el_b": 1.5, "lean": 0.2,
            "air": 0.06 * amp * s * s}  # fmt: skip


def _skip(u: float, amp: float) -> Pose:
    s = math.sin(2 * math.pi * u)

    def leg(x: float) -> tuple[float, float]:
        return (1.15 * amp * x, 0.15 + 1.7 * amp * x) if x > 0 else (0.35 * amp * x, 0.12)

    (ha, ka), (hb, kb) = leg(s), leg(-s)
    return {"hip_a": ha, "knee_a": ka, "hip_b": hb, "knee_b": kb, "sh_a": -1.0 * amp * s if s < 0 else -0.4 * amp * s,
            "sh_b": amp * s if s > 0 else 0.4 * amp * s, "el_a": 0.8, "el_b": 0.8, "lean": 0.08,
            "air": 0.11 * amp * s * s}  # fmt: skip


_JUMP_REST: Pose = {"hip": 0.15, "knee": 0.25, "lean": 0.1, "sh": -0.2, "el": 0.3}
_JUMP = [
    (0.0, _JUMP_REST),
    (0.22, {"hip": 0.95, "knee": 1.7, "lean": 0.8, "sh": -1.1, "el": 0.2}),
    (0.4, {"hip": -0.05, "knee": 0.05, "lean": 0.25, "sh": 2.4, "el": 0.3, "air": 0.06}),
    (0.55, {"hip": 0.75, "knee": 1.3, "lean": 0.3, "sh": 1.7, "el": 0.5, "air": 0.28}),
    (0.7, {"hip": 0.6, "knee": 0.6, "lean": 0.35, "sh": 0.9, "el": 0.4, "air": 0.02}),
    (0.82, {"hip": 0.85, "knee": 1.4, "lean": 0.6, "sh": 0.3, "el": 0.4}),
]


def _both_sides(p: Pose, legs: float = 0.04, arms: float = 0.06) -> Pose:
    """Side-view pose with both legs / arms alike (the far ones a little offset)."""
    out = {k: v for k, v in p.items() if k in ("lean", "air", "dx", "head")}
    for limb, key, off in (("hip", "hip", legs), ("knee", "knee", 0.0), ("sh", "sh", arms), ("el", "el", 0.0)):
        out[f"{limb}_a"] = p.get(key, 0.0)
        out[f"{limb}_b"] = p.get(key, 0.0) - off
    return out


def _jump(u: float, amp: float) -> Pose:
    return _both_sides(_scale(_keyframes(u, _JUMP), _JUMP_REST, amp))


_PJUMP_REST: Pose = {"hip": 0.05, "knee": 0.1, "labd": 0.05, "aabd": 0.2}
_PJUMP = [
    (0.0, _PJUMP_REST),
    (0.25, {"hip": 0.85, "knee": 1.6, "labd": 0.07, "aabd": 0.35, "sh": -0.6}),
    (0.45, {"hip": 0.0, "knee": 0.0, "labd": 0.04, "aabd": 0.3, "sh": 0.7, "air": 0.07}),
    (0.6, {"hip": 0.15, "knee": 0.35, "labd": 0.06, "aabd": 0.45, "air": 0.22}),
    (0.78, {"hip": 0.55, "knee": 1.1, "labd": 0.07, "aabd": 0.35}),
]


def _mirror(p: Pose) -> Pose:
    """Front-view pose with both sides alike (limb keys without suffix are copied to ``_a`` and ``_b``)."""
    out = {k: v for k, v in p.items() if k in ("lean", "air", "dx", "head")}
    for key in ("hip", "knee", "labd", "sh", "el", "aabd", "fel"):
        if key in p:
            out[f"{key}_a"] = out[f"{key}_b"] = p[key]
    return out


def _pjump(u: float, amp: float) -> Pose:
    return _mirror(_scale(_keyframes(u, _PJUMP), _PJUMP_REST, amp))


def _jack(u: float, amp: float) -> Pose:
    w = (1 - math.cos(2 * math.pi * u)) / 2
    arm = min(2.95, 0.15 + 2.75 * amp * w)
    return _mirror({"aabd": arm, "fel": 0.15 * w, "labd": 0.04 + 0.36 * amp * w, "knee": 0.15,
                    "hip": 0.08, "air": 0.05 * amp * abs(math.sin(2 * math.pi * u))})  # fmt: skip


_SIDE = [
    (0.0, {"lead": 0.05, "trail": 0.05, "air": 0.03, "knee": 0.1}),
    (0.3, {"lead": 0.45, "trail": 0.12, "knee": 0.25}),
    (0.55, {"lead": 0.3, "trail": 0.32, "knee": 0.15}),
    (0.78, {"lead": 0.12, "trail": 0.04, "air": 0.1, "knee": 0.2}),
]


def _side(u: float, amp: float) -> Pose:
    # The lead leg is "_a" here: the renderer puts limb a on the side the figure travels to.
    k = _scale(_keyframes(u, _SIDE), {"lead": 0.05, "trail": 0.05}, amp)
    arm = 0.5 + 0.25 * math.sin(2 * math.pi * u)
    legs = {"labd_a": k["lead"], "labd_b": k["trail"], "knee_a": k["knee"], "knee_b": k["knee"], "hip_a": 0.1}
    return {**legs, "hip_b": 0.1, "aabd_a": arm, "aabd_b": arm, "fel_a": 0.2, "fel_b": 0.2, "air": k.get("air", 0.0)}


def _wave1(u: float, amp: float) -> Pose:
    s = math.sin(2 * math.pi * u)
    return {"aabd_a": 2.45 + 0.12 * amp * s, "fel_a": 0.5 + 0.62 * amp * s, "aabd_b": 0.12, "fel_b": 0.05,
            "labd_a": 0.06, "labd_b": 0.06, "knee_a": 0.05, "knee_b": 0.05}  # fmt: skip


def _wave2(u: float, amp: float) -> Pose:
    s, c = math.sin(2 * math.pi * u), math.cos(2 * math.pi * u)
    return _mirror({"aabd": 2.2 + 0.55 * amp * s, "fel": 0.3 + 0.35 * amp * c, "labd": 0.06, "knee": 0.05})


_BEND_REST: Pose = {"knee": 0.05, "sh": 0.05, "el": 0.1}
_BEND = [
    (0.0, _BEND_REST),
    (0.12, _BEND_REST),
    (0.45, {"lean": 1.5, "hip": 0.22, "dx": -0.12, "knee": 0.2, "sh": 0.15, "el": 0.1, "head": 0.3}),
    (0.62, {"lean": 1.55, "hip": 0.25, "dx": -0.13, "knee": 0.25, "sh": 0.35, "el": 0.15, "head": 0.35}),
    (0.9, _BEND_REST),
]


def _bend(u: float, amp: float) -> Pose:
    return _both_sides(_scale(_keyframes(u, _BEND), _BEND_REST, amp), legs=0.03, arms=0.08)


ACTIONS: dict[str, Callable[[float, float], Pose]] = {
    "bend": _bend,
    "jack": _jack,
    "jump": _jump,
    "pjump": _pjump,
    "run": _run,
    "side": _side,
    "skip": _skip,
    "walk": _walk,
    "wave1": _wave1,
    "wave2": _wave2,
}
assert tuple(ACTIONS) == CLASSES

#: Distance travelled per cycle, in body heights (at amplitude 1).
STRIDE = {"walk": 0.75, "run": 1.1, "skip": 0.85, "jump": 0.6, "side": 0.45}


def _travel(action: str, u: float, amp: float) -> float:
    """World distance travelled at phase ``u`` (body heights, monotone in ``u``)."""
    if action not in STRIDE:
        return 0.0
    stride = STRIDE[action] * amp
    if action == "jump":  # only while airborne
        return stride * (math.floor(u) + float(smoothstep(((u % 1.0) - 0.38) / 0.34)))
    return stride * u


# -- sampling ------------------------------------------------------------------------------------


def sample_appearance(rng: np.random.Generator) -> dict[str, Any]:
    """One subject: every appearance factor (categorical ones by name)."""
    return {
        "skin": pick(rng, list(SKIN)),
        "hair_color": pick(rng, list(HAIR_COLOR)),
        "hair_style": pick(rng, HAIR_STYLE),
        "shirt": pick(rng, list(SHIRT)),
        "sleeves": pick(rng, SLEEVES),
        "trousers": pick(rng, list(TROUSERS)),
        "height": uniform(rng, APPEARANCE_FACTORS["height"]),
        "build": uniform(rng, APPEARANCE_FACTORS["build"]),
        "background": pick(rng, list(BACKGROUND)),
        "texture": pick(rng, TEXTURES),
        "floor": pick(rng, list(FLOOR)),
        "ground": uniform(rng, APPEARANCE_FACTORS["ground"]),
        "texture_seed": int(rng.integers(2**31)),
    }


def sample_motion(rng: np.random.Generator, label: int, frames: int = 64) -> dict[str, Any]:
    """The motion nuisances of one video of class ``label`` (``frames`` does not change them)."""
    del frames
    action = CLASSES[label]
    return {
        "period": uniform(rng, PERIOD[action]),
        "phase": uniform(rng, (0.0, 1.0)),
        "amplitude": uniform(rng, MOTION_FACTORS["amplitude"]),
        "direction": pick(rng, ["left", "right"]),
        "start_x": uniform(rng, (0.0, 1.0)),
        "travel": uniform(rng, MOTION_FACTORS["travel"]),
    }


# -- drawing -------------------------------------------------------------------------------------
# Geometry is computed for all frames at once: angles are arrays (T,), points arrays (T, 2).


def _vec(angle: np.ndarray, sign: float) -> np.ndarray:
    """Unit vectors ``(T, 2)`` at ``angle`` from straight down, turned towards ``sign`` (+1: +x)."""
    return np.stack([sign * np.sin(angle), np.cos(angle)], -1)


def _poses(action: str, us: np.ndarray, amp: float) -> dict[str, np.ndarray]:
    """The action's joint angles at phases ``us`` as arrays ``(T,)`` (absent angles are 0)."""
    poses = [ACTIONS[action](float(u), amp) for u in us]
    keys = {k for p in poses for k in p}
    return {k: np.array([p.get(k, 0.0) for p in poses]) for k in keys}


def _skeleton(p: dict[str, np.ndarray], frames: int, side_view: bool, d: float, build: float) -> dict[str, Any]:
    """Joint positions (body-height units, pelvis x at 0, y down, feet not yet on the ground)."""

    def get(k: str) -> np.ndarray:
        return p.get(k, np.zeros(frames))

    lean = get("lean") if side_view else np.zeros(frames)
    up = np.stack([d * np.sin(lean), -np.cos(lean)], -1)
    right = np.stack([-up[:, 1], up[:, 0]], -1)  # +x when upright
    pelvis = np.stack([d * get("dx"), np.zeros(frames)], -1) if side_view else np.zeros((frames, 2))
    chest = pelvis + TORSO * up
    neck_top = chest + NECK * up
    head_t = lean + get("head")
    head_up = np.stack([d * np.sin(head_t), -np.cos(head_t)], -1)
    j: dict[str, Any] = {"pelvis": pelvis, "chest": chest, "neck": neck_top, "up": up, "right": right,
                         "head_up": head_up, "head": neck_top + HEAD_R * 0.92 * head_up}  # fmt: skip
    for limb, sign in (("a", 1.0), ("b", -1.0)):
        s = d * sign  # front view: limb a is on the side the figure faces / travels to
        hip_a, knee_a, sh_a, el_a = get(f"hip_{limb}"), get(f"knee_{limb}"), get(f"sh_{limb}"), get(f"el_{limb}")
        if side_view:
            hip = pelvis
            knee = hip + THIGH * _vec(hip_a, d)
            ankle = knee + SHIN * _vec(hip_a - knee_a, d)
            toe = ankle + FOOT_L * _vec(0.5 * (hip_a - knee_a) + math.pi / 2, d) + np.array([0.0, 0.25 * ANKLE_H])
            shoulder = chest + 0.012 * sign * d * right
            elbow = shoulder + UPPER_ARM * _vec(sh_a, d)
            wrist = elbow + FOREARM * _vec(sh_a + el_a, d)
        else:
            labd, aabd, fel = get(f"labd_{limb}"), get(f"aabd_{limb}"), get(f"fel_{limb}")
            hip = pelvis + s * 0.055 * build * right
            thigh = (THIGH * np.cos(hip_a))[:, None]
            spread = np.stack([s * 0.4 * THIGH * np.sin(np.abs(hip_a)), np.zeros(frames)], -1)
            knee = hip + thigh * _vec(labd, s) + spread
            ankle = hip + (thigh + SHIN * np.abs(np.cos(hip_a - knee_a))[:, None]) * _vec(labd, s)
            toe = ankle + np.array([s * 0.5 * FOOT_L, 0.3 * ANKLE_H])
            shoulder = chest + s * 0.085 * build * right + 0.01 * up
            elbow = shoulder + (UPPER_ARM * np.abs(np.cos(sh_a)))[:, None] * _vec(aabd, s)
            wrist = elbow + (FOREARM * np.abs(np.cos(sh_a + el_a)))[:, None] * _vec(aabd + fel, s)
        j[limb] = {"hip": hip, "knee": knee, "ankle": ankle, "toe": toe, "shoulder": shoulder, "elbow": elbow,
                   "wrist": wrist}  # fmt: skip
    return j


class _Look:
    """Colours and sizes of one subject; ``unit`` is pixels per body height."""

    def __init__(self, app: dict[str, Any], size: int) -> None:
        self.skin = SKIN[app["skin"]]
        self.hair = HAIR_COLOR[app["hair_color"]]
        self.style = app["hair_style"]
        self.shirt = SHIRT[app["shirt"]]
        self.long_sleeves = app["sleeves"] == "long"
        self.trousers = TROUSERS[app["trousers"]]
        self.build = float(app["build"])
        self.unit = BASE_HEIGHT * size * float(app["height"])


def _draw_leg(sc: Scene, leg: dict[str, np.ndarray], look: _Look, u: float, k: float) -> None:
    b = look.build
    trousers = shade(look.trousers, k)
    sc.capsule(leg["hip"], leg["knee"], 0.05 * b * u, 0.038 * b * u, trousers)
    sc.capsule(leg["knee"], leg["ankle"], 0.036 * b * u, 0.028 * b * u, trousers)
    sc.capsule(leg["ankle"], leg["toe"], 0.026 * u, 0.022 * u, shade(SHOES, k))


def _draw_arm(sc: Scene, arm: dict[str, np.ndarray], look: _Look, u: float, k: float) -> None:
    b = look.build
    skin, shirt = shade(look.skin, k), shade(look.shirt, k)
    sh, el, wr = arm["shoulder"], arm["elbow"], arm["wrist"]
    sleeve = shirt if look.long_sleeves else skin
    sc.capsule(sh, el, 0.036 * b * u, 0.03 * b * u, sleeve)
    sc.capsule(el, wr, 0.029 * b * u, 0.024 * b * u, sleeve)
    if not look.long_sleeves:
        sc.capsule(sh, sh + 0.45 * (el - sh), 0.042 * b * u, 0.037 * b * u, shirt)
    along = (wr - el) / np.maximum(1e-6, np.linalg.norm(wr - el, axis=-1, keepdims=True))
    sc.circle(wr + 0.35 * HAND_R * u * along, HAND_R * u, skin)


def _local(c: np.ndarray, fwd: np.ndarray, hu: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Points ``xy`` ``(N, 2)`` given in a head frame (forward, up) around centres ``c`` ``(T, 2)``."""
    return c[:, None, :] + xy[None, :, :1] * fwd[:, None, :] + xy[None, :, 1:] * hu[:, None, :]


def _head_frame(j: dict[str, Any], side_view: bool, d: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Head centre, up and forward unit vectors ``(T, 2)`` (forward: the face in profile, +x from the front)."""
    c, hu = j["head"], j["head_up"]
    return c, hu, np.stack([-hu[:, 1], hu[:, 0]], -1) * (d if side_view else 1.0)


def _draw_long_hair(sc: Scene, j: dict[str, Any], look: _Look, u: float, side_view: bool, d: float) -> None:
    """Long hair falls behind the neck and shoulders, so it is drawn before them."""
    r = HEAD_R * u
    c, hu, fwd = _head_frame(j, side_view, d)
    if side_view:
        sc.capsule(c - 0.2 * r * fwd, c - 2.0 * r * hu - 0.55 * r * fwd, 1.0 * r, 0.75 * r, shade(look.hair, 0.9))
    else:
        sc.capsule(c - 0.2 * r * hu, c - 2.1 * r * hu, 1.22 * r, 1.05 * r, shade(look.hair, 0.9))


def _draw_head(sc: Scene, j: dict[str, Any], look: _Look, u: float, side_view: bool, d: float) -> None:
    r = HEAD_R * u
    c, hu, fwd = _head_frame(j, side_view, d)
    hair = look.hair
    back = -0.35 if side_view else 0.0
    if look.style == "curly":
        sc.circle(c + 0.3 * r * hu + 0.6 * back * r * fwd, 1.32 * r, hair)
    elif look.style == "bun":
        sc.circle(c + 0.95 * r * hu + 1.4 * back * r * fwd, 0.5 * r, hair)
    sc.circle(c, r, look.skin)
    dark = (30, 24, 22)
    if side_view:
        sc.circle(c + 0.92 * r * fwd - 0.05 * r * hu, 0.24 * r, look.skin)
        sc.circle(c + 0.5 * r * fwd + 0.12 * r * hu, 0.14 * r, dark)
    else:
        for sgn in (-1, 1):
            sc.circle(c + sgn * 0.36 * r * fwd + 0.08 * r * hu, 0.13 * r, dark)
    if look.style != "bald":
        if side_view:
            t = np.linspace(0.55, math.pi + 0.9, 14)
            line = np.array([[-0.2, 0.05]])
        else:
            t = np.linspace(-0.3, math.pi + 0.3, 16)
            line = np.array([[-0.85, 0.05], [-0.4, 0.42], [0.4, 0.42], [0.85, 0.05]])
        arc = 1.07 * np.stack([np.cos(t), np.sin(t)], -1)
        sc.polygon(_local(c, fwd, hu, np.concatenate([arc, line]) * r), hair)


def _draw_figure(sc: Scene, j: dict[str, Any], look: _Look, u: float, side_view: bool, d: float) -> None:
    b = look.build
    up, right, chest, pelvis = j["up"], j["right"], j["chest"], j["pelvis"]
    if side_view:
        _draw_arm(sc, j["b"], look, u, 0.72)
        _draw_leg(sc, j["b"], look, u, 0.72)
    else:
        _draw_leg(sc, j["a"], look, u, 1.0)
        _draw_leg(sc, j["b"], look, u, 1.0)
    if look.style == "long":
        _draw_long_hair(sc, j, look, u, side_view, d)
    sc.capsule(chest, j["neck"] + 0.3 * HEAD_R * u * up, 0.028 * u, 0.026 * u, shade(look.skin, 0.92))
    if side_view:
        sc.capsule(pelvis + 0.02 * u * up, chest - 0.01 * u * up, 0.058 * b * u, 0.066 * b * u, look.shirt)
        sc.circle(pelvis, 0.056 * b * u, look.trousers)
        _draw_leg(sc, j["a"], look, u, 1.0)
    else:
        ws, wh, wp = 0.1 * b * u, 0.072 * b * u, 0.05 * b * u
        top, low = chest - 0.015 * u * up, pelvis + 0.03 * u * up
        sc.polygon(np.stack([low - wh * right, low + wh * right, top + ws * right, top - ws * right], 1), look.shirt)
        for s in (-1, 1):
            sc.circle(top + s * (ws - 0.03 * b * u) * right + 0.005 * u * up, 0.04 * b * u, look.shirt)
        sc.capsule(pelvis - wp * right, pelvis + wp * right, wp, wp, look.trousers)
        sc.polygon(np.stack([low - wh * right, low + wh * right, pelvis + wp * right, pelvis - wp * right], 1),
                   look.trousers)  # fmt: skip
    _draw_head(sc, j, look, u, side_view, d)
    _draw_arm(sc, j["a"], look, u, 1.0)
    if not side_view:
        _draw_arm(sc, j["b"], look, u, 1.0)


def _background(app: dict[str, Any], size: int, width: int) -> np.ndarray:
    """Wall, floor and ground line, ``(size, width, 3)`` uint8 at output resolution."""
    rng = make_rng(int(app["texture_seed"]), 0, 0)
    ground = round(app["ground"] * size)
    wall = background_texture(rng, app["texture"], BACKGROUND[app["background"]], ground, width, float(size))
    floor_col = np.asarray(FLOOR[app["floor"]], np.float64)
    fh = size - ground
    noise = smooth_noise(rng, fh, width, size * 0.05)
    depth = 0.9 + 0.15 * (np.arange(fh) / max(fh - 1, 1))[:, None]
    floor = np.clip(floor_col * (depth * (0.92 + 0.12 * noise))[:, :, None], 0, 255).astype(np.uint8)
    img = np.concatenate([wall, floor], axis=0)
    line = max(1, size // 64)
    img[ground - line : ground] = np.asarray(mix(shade(floor_col, 0.55), (0, 0, 0), 0.2), np.uint8)
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
    action = CLASSES[label]
    side_view = action in SIDE_VIEW
    d = 1.0 if motion["direction"] == "right" else -1.0
    amp, period, phase = float(motion["amplitude"]), float(motion["period"]), float(motion["phase"])
    look = _Look(appearance, size)
    unit = look.unit
    us = phase + np.arange(frames) / period
    travel = np.array([_travel(action, float(u), amp) for u in us])
    world = (travel - travel[0]) * unit  # pixels travelled since the first frame
    total = float(world[-1])
    shown = min(total, float(motion["travel"]) * size)  # shown as image motion; the camera pans the rest
    k = shown / total if total > 0 else 0.0
    margin = 0.2 * size
    if total > 0:
        x0 = margin + float(motion["start_x"]) * max(0.0, size - 2 * margin - shown)
        x0 = x0 if d > 0 else size - x0
    else:
        x0 = size * (0.38 + 0.24 * float(motion["start_x"]))
    pan = (1 - k) * world

    pose = _poses(action, us, amp)
    air = pose.get("air", np.zeros(frames))
    j = _skeleton(pose, frames, side_view, d, look.build)
    lowest = np.max([j[leg][p][:, 1] for leg in "ab" for p in ("ankle", "toe")], axis=0) + ANKLE_H
    ground = round(appearance["ground"] * size) - max(1, size // 64) * 0.5
    origin = np.stack([x0 + d * k * world, ground - (lowest + air) * unit], -1)
    j = {key: ({n: origin + unit * q for n, q in v.items()} if isinstance(v, dict)
               else v if key in ("up", "right", "head_up") else origin + unit * v) for key, v in j.items()}  # fmt: skip

    sc = Scene(frames, supersample)
    dx = d * pose.get("dx", np.zeros(frames)) * unit if side_view else 0.0
    shadow = np.stack([origin[:, 0] + dx, np.full(frames, ground + 0.01 * unit)], -1)
    rx = 0.16 * unit * (1.0 - 1.2 * air)
    sc.polygon(shadow[:, None, :] + ellipse_points(0.0, 0.0, 1.0, 0.022 * unit, 0.0, 16) * np.stack(
        [rx, np.ones(frames)], -1)[:, None, :], shade(FLOOR[appearance["floor"]], 0.72))  # fmt: skip
    _draw_figure(sc, j, look, unit, side_view, d)

    bg_w = size + math.ceil(float(pan[-1])) + 2
    bg = Image.fromarray(upsample(_background(appearance, size, bg_w), supersample))
    offs = np.rint(pan * supersample).astype(int)
    c0 = offs if d > 0 else (bg_w - size) * supersample - offs
    boxes = [(int(c), 0, int(c) + size * supersample, size * supersample) for c in c0]
    return sc.render(bg, boxes)
