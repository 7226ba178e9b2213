"""``Size``: a tensor's shape as PyTorch returns it from ``.size()`` and ``.shape`` — a tuple of ints."""


class Size(tuple):
    """A tuple of ints (compare, index and unpack it like any tuple), printed as torch prints it."""

    def __new__(cls, sizes=()):
        return super().__new__(cls, (int(n) for n in sizes))

    def numel(self):
        count = 1
        for n in self:
            count *= n
        return count

    def __getitem__(self, index):
        item = super().__getitem__(index)
        return Size(item) if isinstance(index, slice) else item

    def __repr__(self):
        return f"minires.Size({list(self)})"

    def __str__(self):  # in messages a shape reads as the tuple it is: "(2, 3)"
        return tuple.__repr__(self)
