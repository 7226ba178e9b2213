"""A CIFAR-style ResNet (6n+2 layers, n=1) with the option-A shortcut written as a LambdaLayer around F.pad,
trained with SGD + momentum + weight decay and a MultiStepLR schedule, in float64."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset


class LambdaLayer(nn.Module):
    def __init__(self, fn):
        super(LambdaLayer, self).__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super(BasicBlock, self).__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            pad = planes // 4
            self.shortcut = LambdaLayer(
                lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, pad, pad), "constant", 0))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        out = F.relu(out)
        return out


class ResNet(nn.Module):
    def __init__(self, num_blocks=1, num_classes=10):
        super(ResNet, self).__init__()
        self.in_planes = 4
        self.conv1 = nn.Conv2d(3, 4, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.layer1 = self._make_layer(4, num_blocks, stride=1)
        self.layer2 = self._make_layer(8, num_blocks, stride=2)
        self.layer3 = self._make_layer(16, num_blocks, stride=2)
        self.linear = nn.Linear(16, num_classes)

    def _make_layer(self, planes, num_blocks, stride):
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, out.size()[3])
        out = out.view(out.size(0), -1)
        return self.linear(out)


def numpy_init(model, seed):
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                fan_in = p[0].numel()
                p.copy_(torch.from_numpy(rng.standard_normal(tuple(p.shape)) * np.sqrt(2.0 / fan_in)))
            elif name == "linear.bias":
                p.zero_()


def main(workdir):
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.standard_normal((48, 3, 8, 8)))
    labels = torch.from_numpy(rng.integers(0, 10, 48))
    loader = DataLoader(TensorDataset(images, labels), batch_size=16, shuffle=False)

    model = ResNet().double()
    numpy_init(model, 1)
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    scheduler = optim.lr_scheduler.MultiStepLR(optimizer, milestones=[2, 3], gamma=0.1)

    losses, accuracies, lrs = [], [], []
    for epoch in range(4):
        model.train()
        correct, total = 0, 0
        for inputs, targets in loader:
            optimizer.zero_grad()
            outputs = model(inputs)
            loss = criterion(outputs, targets)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            _, predicted = outputs.max(1)
            total += targets.size(0)
            correct += predicted.eq(targets).sum().item()
        accuracies.append(100.0 * correct / total)
        lrs.append(optimizer.param_groups[0]["lr"])
        scheduler.step()

    model.eval()
    with torch.no_grad():
        test_logits = model(images[:8])
    weights = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    return {"losses": losses, "accuracies": accuracies, "lrs": lrs, "test_logits": test_logits.numpy(),
            "weights": weights, "dtype": "float64"}
