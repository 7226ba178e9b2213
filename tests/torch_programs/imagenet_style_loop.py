"""An old-style training script: Variable, .data, an AverageMeter, top-k accuracy with topk/t/eq/expand_as,
an adjust_learning_rate that edits param_group['lr'] by hand alongside a MultiStepLR, torch.save of a
checkpoint dict, then a resume with torch.load that must continue exactly as if never stopped (float64)."""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd import Variable


class AverageMeter(object):
    def __init__(self):
        self.reset()

    def reset(self):
        self.val, self.avg, self.sum, self.count = 0, 0, 0, 0

    def update(self, val, n=1):
        self.val = val
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count


def accuracy(output, target, topk=(1,)):
    maxk = max(topk)
    batch_size = target.size(0)
    _, pred = output.topk(maxk, 1, True, True)
    pred = pred.t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    res = []
    for k in topk:
        correct_k = correct[:k].reshape(-1).float().sum(0, keepdim=True)
        res.append(correct_k.mul_(100.0 / batch_size))
    return res


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv = nn.Conv2d(1, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6 * 4 * 4, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        x = x.view(-1, 6 * 4 * 4)
        return self.fc(x)


def adjust_learning_rate(optimizer, epoch, base_lr):
    """The hand-written schedule of the classic scripts: divide by 10 at epoch 3."""
    if epoch == 3:
        for param_group in optimizer.param_groups:
            param_group["lr"] = param_group["lr"] * 0.1


def make_model():
    model = Net().double()
    rng = np.random.default_rng(11)
    for p in model.parameters():
        p.data = torch.from_numpy(rng.standard_normal(tuple(p.size())) * 0.3)
    return model


def train(model, optimizer, scheduler, data, epochs, log):
    images, labels = data
    for epoch in epochs:
        adjust_learning_rate(optimizer, epoch, 0.1)
        losses, top1, top3 = AverageMeter(), AverageMeter(), AverageMeter()
        model.train()
        for i in range(0, images.size(0), 10):
            input_var = Variable(images[i:i + 10])
            target_var = Variable(labels[i:i + 10])
            output = model(input_var)
            loss = F.cross_entropy(output, target_var)
            prec1, prec3 = accuracy(output.data, labels[i:i + 10], topk=(1, 3))
            losses.update(loss.data.item(), input_var.size(0))
            top1.update(prec1[0].item(), input_var.size(0))
            top3.update(prec3[0].item(), input_var.size(0))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
        log.append((epoch, losses.avg, top1.avg, top3.avg, optimizer.param_groups[0]["lr"]))


def main(workdir):
    rng = np.random.default_rng(10)
    data = (torch.from_numpy(rng.standard_normal((30, 1, 8, 8))), torch.from_numpy(rng.integers(0, 5, 30)))

    def fresh():
        model = make_model()
        optimizer = torch.optim.SGD(model.parameters(), 0.1, momentum=0.9, weight_decay=1e-4)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[4], gamma=0.5)
        return model, optimizer, scheduler

    model, optimizer, scheduler = fresh()
    straight = []
    train(model, optimizer, scheduler, data, range(6), straight)

    model, optimizer, scheduler = fresh()
    resumed = []
    train(model, optimizer, scheduler, data, range(3), resumed)
    path = os.path.join(workdir, "checkpoint.pth.tar")
    torch.save({"epoch": 3, "state_dict": model.state_dict(), "best_prec1": max(r[2] for r in resumed),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, path)
    model, optimizer, scheduler = fresh()
    checkpoint = torch.load(path)
    model.load_state_dict(checkpoint["state_dict"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    train(model, optimizer, scheduler, data, range(checkpoint["epoch"], 6), resumed)
    return {"straight": straight, "resumed": resumed, "best_prec1": checkpoint["best_prec1"],
            "weights": {k: v.numpy() for k, v in model.state_dict().items()}, "dtype": "float64"}
