"""Tensors as the daemon sees them: a KServe v2 datatype, a shape and
row-major little-endian bytes. Pure Python (struct); numpy is used only when
it is importable and only by from_numpy() / numpy().

    t = Tensor.from_values([[1, 2], [3, 4]], "FP32")   # shape inferred: [2, 2]
    t.data        # 16 bytes
    t.values()    # [1.0, 2.0, 3.0, 4.0]
    t.tolist()    # [[1.0, 2.0], [3.0, 4.0]]
"""

import math
import struct

try:  # optional
    import numpy as _np
except ImportError:  # pragma: no cover - numpy is optional
    _np = None

# KServe v2 datatype -> struct format character (little-endian). BF16 has no
# struct code: it is converted through FP32 bits. BYTES is variable length.
_FORMATS = {
    "BOOL": "?",
    "UINT8": "B",
    "UINT16": "H",
    "UINT32": "I",
    "UINT64": "Q",
    "INT8": "b",
    "INT16": "h",
    "INT32": "i",
    "INT64": "q",
    "FP16": "e",
    "FP32": "f",
    "FP64": "d",
}
DATATYPES = tuple(list(_FORMATS) + ["BF16", "BYTES"])

# Spellings other libraries use (torch, numpy, MultiGPUManager's config) -> ours.
_ALIASES = {
    "bool": "BOOL", "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32",
    "uint64": "UINT64", "int8": "INT8", "int16": "INT16", "int32": "INT32",
    "int64": "INT64", "float16": "FP16", "half": "FP16", "bfloat16": "BF16",
    "float32": "FP32", "float": "FP32", "float64": "FP64", "double": "FP64",
    "bytes": "BYTES", "string": "BYTES", "object": "BYTES", "str": "BYTES",
    "long": "INT64", "int": "INT32", "short": "INT16",
}


def datatype_name(dtype):
    """Returns the KServe v2 name ("FP32", ...) for `dtype`: one of those
    names (any case), a numpy / torch dtype or its name ("float32",
    "torch.float16", "bf16"). Raises ValueError naming the value."""
    if dtype is None:
        raise ValueError("datatype: None is not a datatype")
    text = dtype if isinstance(dtype, str) else None
    if text is None and _np is not None:
        try:
            text = _np.dtype(dtype).name
        except TypeError:
            pass
    if text is None:
        text = str(dtype)  # e.g. torch.float16 -> "torch.float16"
    key = text.strip()
    if key.upper() in DATATYPES:
        return key.upper()
    key = key.lower()
    for prefix in ("torch.", "numpy.", "np."):
        if key.startswith(prefix):
            key = key[len(prefix):]
    if key.upper() in DATATYPES:
        return key.upper()
    if key in _ALIASES:
        return _ALIASES[key]
    raise ValueError("datatype: '%s' is not one of %s" % (text, ", ".join(DATATYPES)))


def element_size(datatype):
    """Bytes per element; 0 for BYTES (variable length)."""
    datatype = datatype_name(datatype)
    if datatype == "BYTES":
        return 0
    if datatype == "BF16":
        return 2
    return struct.calcsize("<" + _FORMATS[datatype])


def _product(shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _float_to_bf16_bits(value):
    bits = struct.unpack("<I", struct.pack("<f", value))[0]
    if math.isnan(value):
        return 0x7FC0
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) & 0xFFFF


def _bf16_bits_to_float(bits):
    return struct.unpack("<f", struct.pack("<I", bits << 16))[0]


def encode(values, datatype):
    """Packs a flat sequence of Python values as `datatype` bytes."""
    datatype = datatype_name(datatype)
    if datatype == "BYTES":
        out = bytearray()
        for v in values:
            b = v.encode("utf-8") if isinstance(v, str) else bytes(v)
            out += struct.pack("<I", len(b))
            out += b
        return bytes(out)
    if datatype == "BF16":
        bits = [_float_to_bf16_bits(float(v)) for v in values]
        return struct.pack("<%dH" % len(bits), *bits)
    fmt = _FORMATS[datatype]
    if fmt in "efd":
        values = [float(v) for v in values]
    elif fmt == "?":
        values = [bool(v) for v in values]
    else:
        values = [int(v) for v in values]
    try:
        return struct.pack("<%d%s" % (len(values), fmt), *values)
    except struct.error as e:
        raise ValueError("values: do not fit %s (%s)" % (datatype, e)) from None


def decode(data, datatype):
    """Unpacks `datatype` bytes into a flat list of Python values (BYTES
    elements as bytes)."""
    datatype = datatype_name(datatype)
    data = bytes(data)
    if datatype == "BYTES":
        out, off = [], 0
        while off < len(data):
            if off + 4 > len(data):
                raise ValueError("data: truncated BYTES length prefix at offset %d" % off)
            (n,) = struct.unpack_from("<I", data, off)
            off += 4
            if n > len(data) - off:
                raise ValueError("data: BYTES element at offset %d runs past the end" % off)
            out.append(data[off:off + n])
            off += n
        return out
    size = element_size(datatype)
    if len(data) % size:
        raise ValueError("data: %d bytes is not a whole number of %s elements" % (len(data), datatype))
    count = len(data) // size
    if datatype == "BF16":
        return [_bf16_bits_to_float(b) for b in struct.unpack("<%dH" % count, data)]
    return list(struct.unpack("<%d%s" % (count, _FORMATS[datatype]), data))


def _flatten(values):
    """Returns (flat list, shape) of a nested list/tuple, checking that it
    is rectangular. Iterative: no recursion on caller data."""
    if not isinstance(values, (list, tuple)):
        return [values], []
    shape = []
    level = [values]
    while level and isinstance(level[0], (list, tuple)):
        width = len(level[0])
        nxt = []
        for item in level:
            if not isinstance(item, (list, tuple)) or len(item) != width:
                raise ValueError("values: nested lists are not rectangular")
            nxt.extend(item)
        shape.append(width)
        level = nxt
        if width == 0:
            break
    for item in level:
        if isinstance(item, (list, tuple)):
            raise ValueError("values: nested lists are not rectangular")
    return level, shape


def _guess_datatype(flat):
    if flat and all(isinstance(v, bool) for v in flat):
        return "BOOL"
    if flat and all(isinstance(v, (str, bytes, bytearray)) for v in flat):
        return "BYTES"
    if flat and all(isinstance(v, int) for v in flat):
        return "INT64"
    return "FP32"


class Tensor(object):
    """A tensor by value: `datatype` (KServe v2 name), `shape` (list of
    ints), `data` (bytes, row-major little-endian; BYTES elements are 4-byte
    length-prefixed). `name` is optional (the input/output name).
    Immutable by convention; plain data, safe to share between threads."""

    __slots__ = ("datatype", "shape", "data", "name")

    def __init__(self, datatype, shape, data, name=""):
        self.datatype = datatype_name(datatype)
        self.shape = [int(d) for d in shape]
        self.data = bytes(data)
        self.name = name
        for i, d in enumerate(self.shape):
            if d < 0:
                raise ValueError("shape[%d]: %d is negative" % (i, d))
        size = element_size(self.datatype)
        if size and len(self.data) != _product(self.shape) * size:
            raise ValueError("data: shape %s of %s needs %d bytes, got %d" % (
                self.shape, self.datatype, _product(self.shape) * size, len(self.data)))

    @classmethod
    def from_values(cls, values, datatype=None, shape=None, name=""):
        """Builds a tensor from a (nested) list of numbers, bools or
        strings; the shape is the nesting's unless `shape` is given, the
        datatype guessed (BOOL, INT64, FP32, BYTES) unless given."""
        if _np is not None and isinstance(values, _np.ndarray):
            if datatype is None and shape is None:
                return cls.from_numpy(values, name=name)
            values = values.tolist()
        flat, nested_shape = _flatten(values)
        if shape is None:
            shape = nested_shape
        elif _product(shape) != len(flat):
            raise ValueError("shape: %s holds %d elements but %d values were given" % (
                list(shape), _product(shape), len(flat)))
        datatype = datatype_name(datatype) if datatype is not None else _guess_datatype(flat)
        return cls(datatype, shape, encode(flat, datatype), name)

    @classmethod
    def from_numpy(cls, array, name=""):
        """Builds a tensor from a numpy array (needs numpy)."""
        if _np is None:
            raise ImportError("numpy is not installed")
        array = _np.ascontiguousarray(array)
        if array.dtype.kind in "OUS":
            return cls.from_values(array.reshape(-1).tolist(), "BYTES", list(array.shape), name)
        dtype = datatype_name(array.dtype)
        return cls(dtype, list(array.shape), array.astype(array.dtype.newbyteorder("<")).tobytes(),
                   name)

    def element_count(self):
        return _product(self.shape)

    def values(self):
        """The elements as a flat list of Python values."""
        return decode(self.data, self.datatype)

    def tolist(self):
        """The elements nested by shape (a scalar for shape [])."""
        flat = self.values()
        if not self.shape:
            return flat[0] if flat else None
        for d in reversed(self.shape[1:]):
            flat = [flat[i:i + d] for i in range(0, len(flat), d)] if d else []
        return flat

    def numpy(self):
        """The tensor as a numpy array (needs numpy)."""
        if _np is None:
            raise ImportError("numpy is not installed")
        if self.datatype == "BYTES":
            return _np.array(self.values(), dtype=object).reshape(self.shape)
        if self.datatype == "BF16":
            return _np.array(self.values(), dtype=_np.float32).reshape(self.shape)
        np_dtype = {"BOOL": "bool", "FP16": "float16", "FP32": "float32", "FP64": "float64"}.get(
            self.datatype, self.datatype.lower())
        return _np.frombuffer(self.data, dtype=_np.dtype(np_dtype).newbyteorder("<")).reshape(
            self.shape)

    def __eq__(self, other):
        return (isinstance(other, Tensor) and self.datatype == other.datatype
                and self.shape == other.shape and self.data == other.data)

    def __ne__(self, other):
        return not self == other

    __hash__ = None

    def __repr__(self):
        vals = self.values() if self.element_count() <= 8 else "%d bytes" % len(self.data)
        return "Tensor(%s%s, %s, %s)" % (self.name + ": " if self.name else "", self.datatype,
                                         self.shape, vals)


def as_tensor(value, datatype=None, name=""):
    """Coerces a Tensor, a numpy array or a (nested) list into a Tensor. A
    Tensor is returned as is (renamed when `name` is given)."""
    if isinstance(value, Tensor):
        if name and value.name != name:
            return Tensor(value.datatype, value.shape, value.data, name)
        return value
    if _np is not None and isinstance(value, _np.ndarray) and datatype is None:
        return Tensor.from_numpy(value, name)
    if isinstance(value, (bytes, bytearray)):
        raise TypeError("%s: raw bytes need a datatype and shape; wrap them in Tensor(...)" %
                        (name or "tensor"))
    if not isinstance(value, (list, tuple)):
        value = [value]
    return Tensor.from_values(value, datatype, name=name)
