"""Numbers in words, for the sentences each lab command ends with. Every sentence is built from the measured
numbers and its wording follows them (a ratio near 1 is never called growth): nothing here is canned."""
import math


def times(value):
    """A factor: x7.7e+17, x12, x0.41; inf and NaN said as such."""
    if value is None or not math.isfinite(value):
        return "to inf/NaN" if value is None or math.isnan(value) or value > 0 else "x-inf"
    return f"x{value:.2g}" if 1e-3 <= abs(value) < 1e4 else f"x{value:.1e}"


def percent(value):
    return f"{100 * value:.1f}%"


def trend(ratio, limit=10.0):
    """What a first-over-last gradient ratio says: vanishing (< 1/limit), exploding (> limit), or kept."""
    if ratio is None or not math.isfinite(ratio):
        return "not finite (overflow)"
    if ratio < 1 / limit:
        return "the gradient vanishes toward the input"
    if ratio > limit:
        return "the gradient grows toward the input (exploding)"
    return f"the gradient stays within a factor {limit:g} across the depth"
