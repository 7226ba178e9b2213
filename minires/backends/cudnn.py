"""``minires.backends.cudnn``: minires does not use cuDNN (its GPU kernels are its own CUDA C), so these
flags change nothing; scripts may set and read them as they do with torch."""
enabled = True
benchmark = False
deterministic = False


def is_available():
    return False
