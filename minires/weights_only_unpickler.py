"""Reading files written by ``torch.save`` — without torch, and without running any code from the file.

A .pt/.pth/.th file is a pickle: a small program for a stack machine that rebuilds objects, and it may name
any Python function to call (``os.system`` as easily as a tensor rebuild). So minires never hands it to
``pickle``. This module is its own interpreter for the few pickle opcodes ``torch.save`` writes, and it
knows exactly the globals that torch's ``weights_only=True`` unpickler accepts (tensor rebuilds, storage
types, dtypes, OrderedDict, torch.Size, torch.device, set, bytes...). Each one maps to a function written
here that builds a minires object; any other global, opcode or call is refused with an
``UnsafePickleError`` before anything is built, and nothing named by the file is ever imported or called.

Both of torch's formats are read: the zip archive (torch >= 1.6: ``<name>/data.pkl`` plus one file per
storage under ``<name>/data/``) and the legacy stream (magic number, protocol, system info, the object, the
storage keys, then each storage's bytes). Every length is checked against the bytes actually present before
memory is allocated, so a truncated file or a "huge" declared storage is refused, not read.
"""
import collections
import struct
import zipfile

import numpy as np

from .checkpoint import CheckpointError

MAX_PICKLE_BYTES = 256 * 2**20   # data.pkl holds structure only; the tensors' bytes are separate
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

# torch's storage types and dtypes by name, as numpy dtypes (None: a dtype numpy cannot hold)
STORAGE_DTYPES = {"DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
                  "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
                  "ByteStorage": "uint8", "BoolStorage": "bool", "BFloat16Storage": None,
                  "ComplexDoubleStorage": None, "ComplexFloatStorage": None, "QUInt8Storage": None,
                  "QInt8Storage": None, "QInt32Storage": None, "QUInt4x2Storage": None, "QUInt2x4Storage": None,
                  "UntypedStorage": "uint8", "TypedStorage": None}
TORCH_DTYPES = {"float64": "float64", "float32": "float32", "float16": "float16", "int64": "int64",
                "int32": "int32", "int16": "int16", "int8": "int8", "uint8": "uint8", "bool": "bool",
                "bfloat16": None, "complex32": None, "complex64": None, "complex128": None,
                **{f"uint{b}": None for b in range(1, 8)}, **{f"int{b}": None for b in range(1, 8)},
                "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
                "float8_e4m3fn": None, "float8_e5m2": None, "float8_e4m3fnuz": None, "float8_e5m2fnuz": None,
                "float8_e8m0fnu": None, "float4_e2m1fn_x2": None, "bits8": None, "bits16": None, "bits1x8": None,
                "bits2x4": None, "bits4x2": None,
                "qint8": None, "quint8": None, "qint32": None, "quint4x2": None, "quint2x4": None}
TENSOR_CLASSES = ("DoubleTensor", "FloatTensor", "HalfTensor", "LongTensor", "IntTensor", "ShortTensor",
                  "CharTensor", "ByteTensor", "BoolTensor", "BFloat16Tensor")  # in torch and torch.cuda
SPARSE_TENSOR_CLASSES = tuple(name for name in TENSOR_CLASSES if name != "BoolTensor")  # torch(.cuda).sparse
UNSUPPORTED_REBUILDS = {"_rebuild_sparse_tensor": "a sparse tensor", "_rebuild_qtensor": "a quantized tensor",
                        "_rebuild_meta_tensor_no_storage": "a meta tensor (no values)",
                        "_rebuild_nested_tensor": "a nested tensor",
                        "_rebuild_wrapper_subclass": "a tensor subclass",
                        "_rebuild_device_tensor_from_numpy": "a tensor saved through numpy"}
QSCHEMES = ("per_tensor_affine", "per_tensor_symmetric", "per_channel_affine", "per_channel_symmetric",
            "per_channel_affine_float_qparams")


class UnsafePickleError(CheckpointError):
    """A torch file asked for something a weights-only load does not do, or is damaged; nothing was run."""


class Global:
    """A global the file named and that is on the list: ``build`` is minires' own function for it."""

    def __init__(self, name, build=None, newobj=False):
        self.name, self.build, self.newobj = name, build, newobj

    def __call__(self, *args):
        if self.build is None:
            raise UnsafePickleError(f"refused: the file calls {self.name}, which is a name a weights-only load "
                                    f"knows but never calls; nothing was run")
        return self.build(*args)

    def __repr__(self):
        return self.name


class Storage:
    """A storage the object refers to by key; its bytes are read (once, checked) when a tensor needs them."""

    def __init__(self, key, dtype, numel, read):
        self.key, self.dtype, self.numel, self._read, self._array = key, dtype, numel, read, None

    def ready(self):
        return self._array is not None or self._read is not None

    def array(self):
        if self._array is None:
            self._array = self._read(self)
        return self._array


class Pending:
    """A tensor of a legacy file, whose storage bytes come after the object: built by ``_resolve``."""

    def __init__(self, args, parameter=False):
        self.args, self.parameter = args, parameter


def _unsupported(what):
    def refuse(*args):
        raise UnsafePickleError(f"the file holds {what}, which minires cannot load (dense CPU tensors of "
                                f"NumPy dtypes only)")
    return refuse


def _int_tuple(value, what):
    if not isinstance(value, tuple) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise UnsafePickleError(f"damaged file: a tensor's {what} is {value!r}, not a tuple of ints")
    return value


def _tensor_from_storage(storage, offset, size, stride, dtype=None):
    """The values of a tensor view (offset, size, stride in elements) of ``storage``, bounds-checked first."""
    from .tensor import Tensor
    if not isinstance(storage, Storage) or not isinstance(offset, int) or offset < 0:
        raise UnsafePickleError("damaged file: a tensor does not point into a storage")
    if not storage.ready():
        return Pending((storage, offset, size, stride, dtype))
    size, stride = _int_tuple(tuple(size), "size"), _int_tuple(tuple(stride), "stride")
    if len(size) != len(stride) or any(n < 0 for n in size) or any(s < 0 for s in stride):
        raise UnsafePickleError(f"damaged file: a tensor has size {size} and stride {stride}")
    base = storage.array()
    if dtype is not None and np.dtype(dtype) != base.dtype:  # an untyped (byte) storage viewed as dtype
        if base.dtype != np.uint8 or len(base) % np.dtype(dtype).itemsize:
            raise UnsafePickleError("damaged file: a tensor's dtype does not fit its storage")
        base = base.view(dtype)
    count = int(np.prod(size, dtype=np.int64)) if size else 1
    if count == 0:
        return Tensor._make(np.empty(size, base.dtype))
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= len(base):
        raise UnsafePickleError(f"damaged file: a tensor of size {size} reaches element {last} of a storage of "
                                f"{len(base)}")
    if count > 16 * max(len(base), 2**20):
        raise UnsafePickleError(f"refused: a tensor of {count} elements made from a storage of {len(base)}")
    view = np.lib.stride_tricks.as_strided(base[offset:], size, [s * base.itemsize for s in stride],
                                           writeable=False)
    return Tensor._make(np.array(view, order="C"))


def _rebuild_tensor(storage, offset, size, stride):
    return _tensor_from_storage(storage, offset, size, stride)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    return _tensor_from_storage(storage, offset, size, stride)


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype, metadata=None):
    return _tensor_from_storage(storage, offset, size, stride, dtype)


def _rebuild_parameter(data, requires_grad=True, hooks=None, state=None):
    from .nn.module import Parameter
    if isinstance(data, Pending):
        data.parameter = True
        return data
    return Parameter(data, requires_grad=bool(requires_grad) and data.dtype.kind == "f")


def _rebuild_from_type(func, new_type, args, state):
    result = func(*args)
    if new_type is not None and getattr(new_type, "name", "") == "torch.nn.parameter.Parameter":
        result = _rebuild_parameter(result)
    return result


def _rebuild_device_tensor(data, dtype, device, requires_grad):
    return data


def _encode(text, encoding="latin1"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("refused: _codecs.encode is only used for bytes written by torch.save")
    return text.encode("latin1")


def _plain(kind):
    """set / bytearray / complex / Counter / OrderedDict of plain values (never of a callable)."""
    def build(*args):
        if any(isinstance(a, Global) for a in args):
            raise UnsafePickleError(f"refused: {kind.__name__} of a callable")
        return kind(*args)
    return build


def _size(values=()):
    from .size import Size
    return Size(_int_tuple(tuple(values), "torch.Size"))


def _device(kind, index=None):
    from .backend import device
    return device(kind, index)


def allowed_globals():
    """Every global torch's weights_only=True accepts, each mapped to what minires does with it."""
    table = {
        "collections.OrderedDict": Global("collections.OrderedDict", _plain(collections.OrderedDict), newobj=True),
        "collections.Counter": Global("collections.Counter", _plain(collections.Counter), newobj=True),
        "torch.nn.parameter.Parameter": Global("torch.nn.parameter.Parameter", _rebuild_parameter),
        "torch.serialization._get_layout": Global("torch.serialization._get_layout", lambda name: str(name)),
        "torch.Size": Global("torch.Size", _size),
        "torch.Tensor": Global("torch.Tensor"),
        "torch.device": Global("torch.device", _device),
        "_codecs.encode": Global("_codecs.encode", _encode),
        "builtins.bytearray": Global("builtins.bytearray", _plain(bytearray)),
        "builtins.set": Global("builtins.set", _plain(set), newobj=True),
        "builtins.complex": Global("builtins.complex", _plain(complex)),
        "torch._utils._rebuild_tensor": Global("torch._utils._rebuild_tensor", _rebuild_tensor),
        "torch._utils._rebuild_tensor_v2": Global("torch._utils._rebuild_tensor_v2", _rebuild_tensor_v2),
        "torch._utils._rebuild_tensor_v3": Global("torch._utils._rebuild_tensor_v3", _rebuild_tensor_v3),
        "torch._utils._rebuild_parameter": Global("torch._utils._rebuild_parameter", _rebuild_parameter),
        "torch._utils._rebuild_parameter_with_state": Global("torch._utils._rebuild_parameter_with_state",
                                                             _rebuild_parameter),
        "torch._utils._rebuild_device_tensor_from_cpu_tensor": Global(
            "torch._utils._rebuild_device_tensor_from_cpu_tensor", _rebuild_device_tensor),
        "torch._tensor._rebuild_from_type_v2": Global("torch._tensor._rebuild_from_type_v2", _rebuild_from_type),
    }
    for name, what in UNSUPPORTED_REBUILDS.items():
        table[f"torch._utils.{name}"] = Global(f"torch._utils.{name}", _unsupported(what))
    for name, dtype in TORCH_DTYPES.items():
        table[f"torch.{name}"] = Global(f"torch.{name}", _unsupported(f"the dtype torch.{name}"))
        table[f"torch.{name}"].dtype = dtype
    for name, dtype in STORAGE_DTYPES.items():  # typed storages in torch and torch.cuda; the two bases in storage
        modules = ("torch.storage",) if name in ("TypedStorage", "UntypedStorage") else \
            ("torch",) if name.startswith("Q") else ("torch", "torch.cuda")
        for module in modules:
            table[f"{module}.{name}"] = Global(f"{module}.{name}")
            table[f"{module}.{name}"].dtype = dtype
    for names, modules in ((TENSOR_CLASSES, ("torch", "torch.cuda")),
                           (SPARSE_TENSOR_CLASSES, ("torch.sparse", "torch.cuda.sparse"))):
        for name in names:
            for module in modules:
                table[f"{module}.{name}"] = Global(f"{module}.{name}")
    for name in QSCHEMES:
        table[f"torch.{name}"] = Global(f"torch.{name}")
    return table


ALLOWED = allowed_globals()


def find_global(module, name):
    if not isinstance(module, str) or not isinstance(name, str):
        raise UnsafePickleError("refused: a global whose name is not a string")
    found = ALLOWED.get(f"{module}.{name}")
    if found is None:
        raise UnsafePickleError(f"refused: the file asks for {module}.{name}, which a weights-only load never "
                                f"imports or calls (torch's weights_only=True refuses it too); nothing was run")
    return found


class Interpreter:
    """Runs one pickle (protocol 2 to 5, the opcodes torch.save writes) over ``data`` from ``start``; each
    value it builds is a plain Python value, an allowed Global, or what an allowed Global built."""

    def __init__(self, data, start, persistent_load):
        self.data, self.pos, self.persistent_load = data, start, persistent_load

    def read(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise UnsafePickleError(f"damaged file: the pickle asks for {n} bytes at offset {self.pos} but the "
                                    f"file ends at {len(self.data)} (truncated?)")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def line(self):
        end = self.data.find(b"\n", self.pos, self.pos + 512)
        if end < 0:
            raise UnsafePickleError("damaged file: a global's name does not end")
        text = self.data[self.pos:end].decode("utf-8", "replace")
        self.pos = end + 1
        return text

    def unsigned(self, n):
        return int.from_bytes(self.read(n), "little")

    def run(self):
        stack, marks, memo = [], [], {}

        def pop_mark():
            if not marks:
                raise UnsafePickleError("damaged file: a pickle MARK is missing")
            start = marks.pop()
            items = stack[start:]
            del stack[start:]
            return items

        def pop():
            if not stack:
                raise UnsafePickleError("damaged file: the pickle's stack is empty")
            return stack.pop()

        def dict_at(position):
            target = stack[position] if stack else None
            if not isinstance(target, dict):
                raise UnsafePickleError("refused: a pickle sets items on something that is not a dict")
            return target

        while True:
            op = self.read(1)
            if op == b"\x80":                      # PROTO
                self.read(1)
            elif op == b"\x95":                    # FRAME (protocol 4): a length hint only
                self.read(8)
            elif op == b".":                       # STOP
                return pop()
            elif op == b"(":                       # MARK
                marks.append(len(stack))
            elif op == b"}":                       # EMPTY_DICT
                stack.append({})
            elif op == b"]":                       # EMPTY_LIST
                stack.append([])
            elif op == b")":                       # EMPTY_TUPLE
                stack.append(())
            elif op == b"\x8f":                    # EMPTY_SET
                stack.append(set())
            elif op == b"t":                       # TUPLE
                stack.append(tuple(pop_mark()))
            elif op in (b"\x85", b"\x86", b"\x87"):  # TUPLE1 / TUPLE2 / TUPLE3
                n = op[0] - 0x84
                if len(stack) < n:
                    raise UnsafePickleError("damaged file: the pickle's stack is empty")
                items = tuple(stack[-n:])
                del stack[-n:]
                stack.append(items)
            elif op == b"N":
                stack.append(None)
            elif op == b"\x88":
                stack.append(True)
            elif op == b"\x89":
                stack.append(False)
            elif op == b"J":                       # BININT
                stack.append(struct.unpack("<i", self.read(4))[0])
            elif op == b"K":                       # BININT1
                stack.append(self.unsigned(1))
            elif op == b"M":                       # BININT2
                stack.append(self.unsigned(2))
            elif op == b"\x8a":                    # LONG1
                stack.append(int.from_bytes(self.read(self.unsigned(1)), "little", signed=True))
            elif op == b"G":                       # BINFLOAT
                stack.append(struct.unpack(">d", self.read(8))[0])
            elif op == b"X":                       # BINUNICODE
                stack.append(self.read(self.unsigned(4)).decode("utf-8", "surrogatepass"))
            elif op == b"\x8c":                    # SHORT_BINUNICODE
                stack.append(self.read(self.unsigned(1)).decode("utf-8", "surrogatepass"))
            elif op == b"U":                       # SHORT_BINSTRING (protocol 2 str)
                stack.append(self.read(self.unsigned(1)).decode("latin1"))
            elif op == b"B":                       # BINBYTES
                stack.append(bytes(self.read(self.unsigned(4))))
            elif op == b"C":                       # SHORT_BINBYTES
                stack.append(bytes(self.read(self.unsigned(1))))
            elif op in (b"q", b"r"):               # BINPUT / LONG_BINPUT
                memo[self.unsigned(1 if op == b"q" else 4)] = stack[-1] if stack else pop()
            elif op == b"\x94":                    # MEMOIZE
                memo[len(memo)] = stack[-1] if stack else pop()
            elif op in (b"h", b"j"):               # BINGET / LONG_BINGET
                key = self.unsigned(1 if op == b"h" else 4)
                if key not in memo:
                    raise UnsafePickleError(f"damaged file: the pickle reads memo entry {key} before writing it")
                stack.append(memo[key])
            elif op == b"c":                       # GLOBAL module\nname\n
                module = self.line()
                stack.append(find_global(module, self.line()))
            elif op == b"\x93":                    # STACK_GLOBAL: module and name from the stack
                name, module = pop(), pop()
                stack.append(find_global(module, name))
            elif op == b"Q":                       # BINPERSID: a storage of the archive
                stack.append(self.persistent_load(pop()))
            elif op == b"R":                       # REDUCE: call an allowed Global
                args, func = pop(), pop()
                if not isinstance(func, Global) or not isinstance(args, tuple):
                    raise UnsafePickleError(f"refused: the pickle calls {type(func).__name__}, not an allowed "
                                            f"global; nothing was run")
                stack.append(func(*args))
            elif op == b"\x81":                    # NEWOBJ: cls.__new__(cls, *args), for plain containers
                args, cls = pop(), pop()
                if not isinstance(cls, Global) or not cls.newobj or not isinstance(args, tuple):
                    raise UnsafePickleError(f"refused: the pickle makes a {cls!r} object; nothing was run")
                stack.append(cls(*args))
            elif op == b"b":                       # BUILD: state for a dict (torch's _metadata) or a tensor
                state, target = pop(), stack[-1] if stack else None
                if not isinstance(target, (dict, set)) and type(target).__name__ not in ("Tensor", "Parameter"):
                    raise UnsafePickleError(f"refused: the pickle sets the state of a {type(target).__name__}")
                if isinstance(state, Global) or (isinstance(state, tuple) and any(isinstance(s, Global)
                                                                                    for s in state)):
                    raise UnsafePickleError("refused: a callable as an object's state")
            elif op == b"a":                       # APPEND
                value = pop()
                if not stack or not isinstance(stack[-1], list):
                    raise UnsafePickleError("refused: a pickle appends to something that is not a list")
                stack[-1].append(value)
            elif op == b"e":                       # APPENDS
                items = pop_mark()
                if not stack or not isinstance(stack[-1], (list, set)):
                    raise UnsafePickleError("refused: a pickle appends to something that is not a list")
                stack[-1].extend(items) if isinstance(stack[-1], list) else stack[-1].update(items)
            elif op == b"\x90":                    # ADDITEMS (a set)
                items = pop_mark()
                if not stack or not isinstance(stack[-1], set):
                    raise UnsafePickleError("refused: a pickle adds items to something that is not a set")
                stack[-1].update(items)
            elif op == b"s":                       # SETITEM
                value, key = pop(), pop()
                dict_at(-1)[_key(key)] = value
            elif op == b"u":                       # SETITEMS
                items = pop_mark()
                target = dict_at(-1)
                for k in range(0, len(items) - 1, 2):
                    target[_key(items[k])] = items[k + 1]
            else:
                raise UnsafePickleError(f"refused: pickle opcode {op!r} at offset {self.pos - 1} is not one "
                                        f"torch.save writes; nothing was run")


def _key(key):
    if isinstance(key, (Global, list, dict, set)):
        raise UnsafePickleError("refused: a dict key that is not a plain value")
    return key


# --- the two file formats -------------------------------------------------------------------------------
def _storage_dtype(storage_type, dtype_hint=None):
    dtype = getattr(storage_type, "dtype", "missing")
    if dtype == "missing":
        raise UnsafePickleError(f"damaged file: {storage_type!r} is not a storage type")
    if dtype is None:
        raise UnsafePickleError(f"the file holds a {storage_type!r}, which minires cannot load (NumPy dtypes only)")
    return np.dtype(dtype)


def load_zip(path):
    """The object saved in a torch zip archive, its tensors as minires Tensors."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnsafePickleError(f"{str(path)!r} is not a readable torch archive ({exc}); is it truncated?") \
            from None
    with archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1] or \
            [n for n in names if n == "data.pkl"]
        if len(pickles) != 1:
            raise UnsafePickleError(f"{str(path)!r} is a zip file but not a torch.save archive (no data.pkl)")
        prefix = pickles[0][:-len("data.pkl")]
        big_endian = prefix + "byteorder" in names and archive.read(prefix + "byteorder").strip() == b"big"

        def read_storage(storage):
            name = f"{prefix}data/{storage.key}"
            try:
                info = archive.getinfo(name)
            except KeyError:
                raise UnsafePickleError(f"damaged file: storage {storage.key!r} is missing from the archive") \
                    from None
            expected = storage.numel * storage.dtype.itemsize
            if info.file_size != expected:
                raise UnsafePickleError(f"damaged file: storage {storage.key!r} declares {storage.numel} "
                                        f"elements ({expected} bytes) but the archive holds {info.file_size}")
            try:
                raw = archive.read(info)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                raise UnsafePickleError(f"damaged file: storage {storage.key!r} cannot be read ({exc})") from None
            dtype = storage.dtype.newbyteorder(">") if big_endian else storage.dtype
            return np.frombuffer(raw, dtype=dtype).astype(storage.dtype)

        storages = {}

        def persistent_load(pid):
            if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
                raise UnsafePickleError(f"refused: an unknown persistent id {pid!r:.80}")
            _, storage_type, key, _location, numel = pid
            if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
                raise UnsafePickleError("damaged file: a storage reference is malformed")
            if key not in storages:
                storages[key] = Storage(key, _storage_dtype(storage_type), numel, read_storage)
            return storages[key]

        info = archive.getinfo(pickles[0])
        if info.file_size > MAX_PICKLE_BYTES:
            raise UnsafePickleError(f"refused: data.pkl declares {info.file_size} bytes")
        data = archive.read(info)
        return Interpreter(data, 0, persistent_load).run()


def load_legacy(path):
    """The object saved by torch.save(..., _use_new_zipfile_serialization=False) (one stream of pickles)."""
    with open(path, "rb") as f:
        data = f.read()
    storages = {}

    def persistent_load(pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise UnsafePickleError(f"refused: an unknown persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel, view = pid
        if view is not None:
            raise UnsafePickleError("the file holds storage views (torch < 1.0), which minires cannot load")
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise UnsafePickleError("damaged file: a storage reference is malformed")
        if key not in storages:
            storages[key] = Storage(key, _storage_dtype(storage_type), numel, None)
        return storages[key]

    position = 0

    def next_pickle(load=None):
        nonlocal position
        interpreter = Interpreter(data, position, load or _no_persistent)
        value = interpreter.run()
        position = interpreter.pos
        return value

    if next_pickle() != LEGACY_MAGIC:
        raise UnsafePickleError(f"{str(path)!r} is not a torch.save file (no magic number)")
    next_pickle()  # the protocol version
    next_pickle()  # system info: byte order and type sizes
    result = next_pickle(persistent_load)
    keys = next_pickle()
    if not isinstance(keys, list):
        raise UnsafePickleError("damaged file: the storage keys are missing")
    for key in keys:
        storage = storages.get(key)
        if storage is None:
            raise UnsafePickleError(f"damaged file: storage {key!r} is listed but never used")
        count = int.from_bytes(data[position:position + 8], "little")
        nbytes = count * storage.dtype.itemsize
        if count != storage.numel or position + 8 + nbytes > len(data):
            raise UnsafePickleError(f"damaged file: storage {key!r} declares {count} elements but the file "
                                    f"{'ends' if position + 8 + nbytes > len(data) else 'expected ' + str(storage.numel)}")
        storage._array = np.frombuffer(data, storage.dtype, count, position + 8).copy()
        position += 8 + nbytes
    return _resolve(result)


def _no_persistent(pid):
    raise UnsafePickleError("damaged file: a storage reference outside the object")


def _resolve(value):
    """Build the Pending tensors of a legacy file now that its storages are read (containers in place)."""
    if isinstance(value, Pending):
        tensor = _tensor_from_storage(*value.args)
        return _rebuild_parameter(tensor) if value.parameter else tensor
    if isinstance(value, dict):
        for key in list(value):
            value[key] = _resolve(value[key])
    elif isinstance(value, list):
        value[:] = [_resolve(v) for v in value]
    elif type(value) is tuple:  # (a Size holds ints only)
        return tuple(_resolve(v) for v in value)
    return value


def is_torch_file(head):
    """Whether the first bytes are a torch.save file: a zip archive or a (legacy) pickle stream."""
    return head[:4] == b"PK\x03\x04" or head[:1] == b"\x80"


def load(path):
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:4] == b"PK\x03\x04":
        return load_zip(path)
    return load_legacy(path)


__all__ = ["load", "load_zip", "load_legacy", "is_torch_file", "UnsafePickleError", "ALLOWED"]
