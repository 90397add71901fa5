"""A numerical gradient check: central differences, to test a gradient computed any other way.

CS231n's check: perturb one entry of x by ±h, evaluate f twice, and take (f(x + h) - f(x - h)) / 2h.
Its error shrinks with h² (a forward difference's only with h), so with float64 and h = 1e-5 it agrees
with an exact gradient to about 1e-9 relative; far more than that means the other gradient is wrong.
"""

from __future__ import annotations

import numpy as np


def numerical_gradient(f, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """The gradient of the scalar function `f` at `x` by central differences, entry by entry.

    x: a float64 array, changed in place while f is evaluated and restored before returning; f(x)
    returns a float. Returns an array of x's shape.
    """
    if not (isinstance(x, np.ndarray) and x.dtype == np.float64):
        raise TypeError(f"x must be a float64 NumPy array (changed in place), got {type(x).__name__} "
                        f"{getattr(x, 'dtype', '')}")
    if not h > 0:
        raise ValueError(f"h must be > 0, got {h}")
    ### BEGIN SOLUTION (notebooks/03_training.ipynb)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        old = x[index]
        x[index] = old + h
        up = f(x)
        x[index] = old - h
        down = f(x)
        x[index] = old
        grad[index] = (up - down) / (2.0 * h)
    return grad
    ### END SOLUTION


def relative_error(a, b) -> float:
    """max |a - b| / max(|a| + |b|, tiny): how far two gradients disagree, whatever their size."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-12)))
