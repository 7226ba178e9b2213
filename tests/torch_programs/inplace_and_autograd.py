"""In-place idioms and the autograd API: nn.ReLU(inplace=True), `out += residual`, x.add_(..)/mul_ under
no_grad for a hand-written SGD, torch.autograd.grad for an input gradient, copy.deepcopy of the best
state_dict (the transfer-learning tutorial's pattern) and torch.set_grad_enabled(phase == "train")."""
import copy

import numpy as np
import torch
import torch.nn as nn


class Residual(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                                  nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.body(x)
        out += x
        return self.relu(out)


def build(seed):
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(inplace=True), Residual(4), Residual(4),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    model = model.to(torch.float64)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.from_numpy(rng.uniform(-0.5, 0.5, tuple(p.shape))))
    return model


def main(workdir):
    rng = np.random.default_rng(20)
    x = torch.from_numpy(rng.standard_normal((12, 2, 6, 6)))
    y = torch.from_numpy(rng.integers(0, 3, 12))
    model = build(21)
    criterion = nn.CrossEntropyLoss()
    best_loss, best_weights, history = float("inf"), None, []
    for epoch in range(4):
        for phase in ["train", "val"]:
            model.train() if phase == "train" else model.eval()
            with torch.set_grad_enabled(phase == "train"):
                outputs = model(x)
                _, preds = torch.max(outputs, 1)
                loss = criterion(outputs, y)
                if phase == "train":
                    model.zero_grad()
                    loss.backward()
                    with torch.no_grad():
                        for p in model.parameters():
                            p.add_(p.grad, alpha=-0.1)  # p -= lr * grad, in place
                            p.mul_(1 - 1e-4)
            running_corrects = torch.sum(preds == y.data)
            history.append((phase, loss.item(), running_corrects.item()))
            if phase == "val" and loss.item() < best_loss:
                best_loss, best_weights = loss.item(), copy.deepcopy(model.state_dict())
    model.load_state_dict(best_weights)

    model.eval()
    inputs = x.clone().requires_grad_(True)
    score = model(inputs).log_softmax(dim=1)[:, 0].sum()
    (input_grad,) = torch.autograd.grad(score, inputs)

    counter = torch.zeros(3, dtype=torch.long)
    for label in y:
        counter[label] += 1
    return {"history": history, "best_loss": best_loss, "input_grad": input_grad.numpy(),
            "counts": counter.tolist(), "weights": {k: v.numpy() for k, v in model.state_dict().items()},
            "dtype": "float64"}
