"""tqdm progress bars for training (the CLI's side of minires.training.Callbacks)."""
from tqdm import tqdm

from ..training import Callbacks


class ProgressBars(Callbacks):
    def __init__(self):
        self.bar = None

    def on_epoch_start(self, epoch, batches, first_batch):
        self.close()
        self.bar = tqdm(total=batches, initial=first_batch, desc=f"epoch {epoch + 1}", unit="batch",
                        dynamic_ncols=True, leave=True)

    def on_batch(self, loss, accuracy):
        self.bar.set_postfix(loss=f"{loss:.4f}", acc=f"{100 * accuracy:.1f}%", refresh=False)
        self.bar.update(1)

    def on_epoch_end(self, row):
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{row['train_loss']:.4f}", acc=f"{100 * row['train_accuracy']:.1f}%",
                                 test=f"{100 * row['test_accuracy']:.2f}%")
        self.close()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
