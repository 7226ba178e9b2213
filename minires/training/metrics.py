"""Per-epoch metrics: metrics.csv and metrics.json in the run directory, rewritten atomically each epoch,
and loss/accuracy curves as PNG when matplotlib is installed."""
import csv
import io
import json
import os

from ..files import atomic_write_bytes
from ..plotting import pyplot

COLUMNS = ("epoch", "step", "lr", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds")


def write_metrics(directory, history):
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_bytes(os.path.join(directory, "metrics.csv"), text.getvalue().encode())
    atomic_write_bytes(os.path.join(directory, "metrics.json"), json.dumps(history, indent=1).encode())


def plot_curves(directory, history, title):
    """curves.png: loss and accuracy per epoch (train and test). Returns the path, or None without
    matplotlib."""
    plt = pyplot()
    if plt is None:
        return None
    epochs = [row["epoch"] for row in history]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for split, style in (("train", "-"), ("test", "--")):
        loss_axis.plot(epochs, [row[f"{split}_loss"] for row in history], style, label=split)
        accuracy_axis.plot(epochs, [100 * row[f"{split}_accuracy"] for row in history], style, label=split)
    loss_axis.set(xlabel="epoch", ylabel="cross-entropy loss", yscale="log", title="loss")
    accuracy_axis.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    from matplotlib.ticker import MaxNLocator

    for axis in (loss_axis, accuracy_axis):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    path = os.path.join(directory, "curves.png")
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
