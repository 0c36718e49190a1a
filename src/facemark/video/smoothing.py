"""Temporal smoothing of landmarks: the One-Euro filter (Casiez, Roussel & Vogel, CHI 2012).

A first-order low-pass filter whose cut-off frequency rises with speed: when a point is still, a low cut-off
removes jitter; when it moves, a high cut-off removes lag. Per point:

    dx     = (x - x̂_prev) / dt                       raw speed
    dx̂     = low-pass(dx, d_cutoff)                   smoothed speed (a noisy speed would open the filter)
    cutoff = min_cutoff + beta * |dx̂| / scale
    x̂      = low-pass(x, cutoff)

where low-pass(v, f) = x̂_prev + α (v - x̂_prev) with α = 1 / (1 + τ / dt), τ = 1 / (2π f).

Here it runs on all points of a face at once, arrays (P, 2) (any (..., D) array works). Each point gets one
cut-off from the length of its velocity vector, so x and y are smoothed alike and a point moving diagonally
is not treated differently from one moving along an axis. `scale` makes `beta` independent of the face's
size in pixels: pass the face's size and speed is measured in face sizes per second.
"""

from __future__ import annotations

import math

import numpy as np


def smoothing_factor(dt: float | np.ndarray, cutoff: float | np.ndarray) -> float | np.ndarray:
    """α of an exponential low-pass with cut-off `cutoff` (Hz) sampled every `dt` seconds."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One-Euro filter over arrays of points, e.g. (P, 2) landmarks of one face.

    min_cutoff: cut-off (Hz) when still; lower means less jitter and more lag at low speed.
    beta: how fast the cut-off rises with speed (per unit of speed / scale); higher means less lag when moving.
    d_cutoff: cut-off (Hz) for the speed estimate itself.
    frequency: samples per second, used when no timestamps are given (or they do not increase).
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0,
                 frequency: float = 30.0):
        for name, value in (("min_cutoff", min_cutoff), ("d_cutoff", d_cutoff), ("frequency", frequency)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not (math.isfinite(beta) and beta >= 0):
            raise ValueError(f"beta must be a non-negative number, got {beta!r}")
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.frequency = float(frequency)
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample passes through unchanged."""
        self._x: np.ndarray | None = None  # last filtered value
        self._dx: np.ndarray | None = None  # last filtered velocity (same shape)
        self._t: float | None = None  # time of the last sample (None when samples come without times)

    def __call__(self, x, t: float | None = None, *, scale: float = 1.0) -> np.ndarray:
        """The filtered value of sample `x` taken at time `t` (seconds; None: 1 / frequency after the last).

        `scale`: the unit that speeds are divided by before `beta` applies (e.g. the face's size in pixels).
        """
        x = np.array(x, dtype=np.float64)  # a copy: the caller may reuse its array
        if self._x is None or self._x.shape != x.shape:
            self._x, self._dx, self._t = x, np.zeros_like(x), t
            return x.copy()
        dt = 1.0 / self.frequency
        if t is not None and self._t is not None and t > self._t:
            dt = t - self._t
        self._t = t

        # A non-finite point (a model may give NaN for a point it cannot place) leaves its state alone and comes
        # out as NaN; a point seen for the first time starts from its sample.
        finite = np.isfinite(x).all(axis=-1, keepdims=True)
        fresh = ~np.isfinite(self._x).all(axis=-1, keepdims=True) & finite
        self._x = np.where(fresh, x, self._x)
        self._dx = np.where(fresh, 0.0, self._dx)
        x = np.where(finite, x, self._x)

        # Filter the velocity as a vector, not its length: noise then averages out instead of adding up to a
        # positive speed that would open the filter while the face is still.
        velocity = (x - self._x) / dt
        self._dx = self._dx + smoothing_factor(dt, self.d_cutoff) * (velocity - self._dx)
        speed = np.linalg.norm(self._dx, axis=-1, keepdims=True) / max(float(scale), 1e-12)
        alpha = smoothing_factor(dt, self.min_cutoff + self.beta * speed)
        self._x = self._x + alpha * (x - self._x)
        return np.where(finite, self._x, np.nan)
