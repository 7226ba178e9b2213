"""A d2l-style network built from Lazy modules (input sizes inferred by a first dummy forward), initialised
with net.apply, trained with Adam on full batches in float64; the weights read back through state_dict."""
import numpy as np
import torch
from torch import nn


def init_cnn(module):
    if type(module) in (nn.Linear, nn.Conv2d):
        nn.init.zeros_(module.bias)


def numpy_weights(net, seed):
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for name, param in net.named_parameters():
            if name.endswith("weight") and param.dim() > 1:
                param.copy_(torch.tensor(rng.standard_normal(tuple(param.shape)) * 0.2, dtype=torch.float64))


def main(workdir):
    net = nn.Sequential(
        nn.LazyConv2d(6, kernel_size=3, padding=1), nn.LazyBatchNorm2d(), nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.LazyConv2d(8, kernel_size=3, padding=1), nn.LazyBatchNorm2d(), nn.ReLU(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(), nn.LazyLinear(16), nn.ReLU(), nn.LazyLinear(4))
    rng = np.random.default_rng(7)
    X = torch.tensor(rng.standard_normal((20, 1, 8, 8)), dtype=torch.float64)
    Y = torch.tensor(rng.integers(0, 4, 20), dtype=torch.long)
    net = net.double()
    net.eval()
    net(X[:2])  # the dummy forward that makes the lazy layers' parameters (eval: running stats untouched)
    net = net.double()
    net.apply(init_cnn)
    numpy_weights(net, 8)
    shapes = [tuple(layer.weight.shape) for layer in net if hasattr(layer, "weight")]
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    losses = []
    for epoch in range(5):
        net.train()
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(net(X), Y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    net.eval()
    with torch.no_grad():
        accuracy = (net(X).argmax(dim=1) == Y).float().mean().item()
    return {"shapes": shapes, "losses": losses, "accuracy": accuracy,
            "weights": {k: v.numpy() for k, v in net.state_dict().items()}, "dtype": "float64"}
