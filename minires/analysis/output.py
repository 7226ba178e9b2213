"""Writing an experiment's numbers (CSV + JSON) and figures (PNG, matplotlib's Agg backend)."""
import csv
import io
import json
import math
import os

from ..files import atomic_write_bytes
from ..plotting import pyplot  # noqa: F401  (the experiments import it from here)
from ..errors import ArgumentTypeError


def write_rows(directory, name, rows, extra=None):
    """``name``.csv with one line per row, and ``name``.json with the rows (and ``extra``)."""
    os.makedirs(directory, exist_ok=True)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(os.path.join(directory, f"{name}.csv"), text.getvalue().encode())
    payload = {"rows": rows, **(extra or {})}
    atomic_write_bytes(os.path.join(directory, f"{name}.json"),
                       json.dumps(payload, indent=1, default=_jsonable).encode())


def _jsonable(value):
    if hasattr(value, "tolist"):  # a NumPy array or scalar
        return value.tolist()
    raise ArgumentTypeError(f"cannot write {type(value).__name__} to JSON")


def save_figure(figure, directory, name, legend_below=False):
    """name.png in directory; ``legend_below`` leaves a strip under the panels for a figure legend."""
    path = os.path.join(directory, f"{name}.png")
    figure.tight_layout(rect=(0, 0.05, 1, 1) if legend_below else None)
    figure.savefig(path, dpi=100)
    figure.clf()
    return path


def finite(values):
    """Split a series into finite points and the indices of non-finite ones (shown, never dropped silently)."""
    good = [(i, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    bad = [i for i, v in enumerate(values) if v is None or not math.isfinite(v)]
    return good, bad


def mark_non_finite(axis, positions, color=None, label=None, total=None):
    """Show non-finite values legibly, whatever the y-scale: one x marker at the first of them (on the top
    edge) and a note in the panel saying how many there are, e.g. "20 layers: inf/NaN in 19 of 20 (diverged)"."""
    if not positions:
        return
    axis.plot(positions[:1], [0.97], "x", color=color, markersize=9, mew=2, clip_on=False,
              transform=axis.get_xaxis_transform())
    notes = getattr(axis, "_non_finite_notes", 0)
    axis._non_finite_notes = notes + 1
    count = f"{len(positions)} of {total}" if total else f"{len(positions)} points"
    axis.text(0.03, 0.9 - 0.08 * notes, f"x {label}: inf/NaN at {count} (diverged)", transform=axis.transAxes,
              color=color, fontsize=8, va="top",
              bbox=dict(boxstyle="round,pad=0.2", fc="white", ec=color or "grey", alpha=0.9))
