"""Verification tooling: is every gradient right?

    gradcheck.py        numerical gradient checks (float64 central differences, random upstream gradient)
    op_catalog.py       every differentiable op: its input draw, its labels and its PyTorch twin
    parity.py           a whole model against its PyTorch twin, layer by layer
    torch_reference.py  the PyTorch twins of the model zoo (importing it imports torch)
"""
