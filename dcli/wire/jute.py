"""Jute, ZooKeeper's binary record encoding: the primitives, bounded on the way in.

All integers are big-endian. A `buffer` or `ustring` is an int length and that many bytes, a
`vector` an int count and that many items; -1 means null for all three (null and empty are
different values and both round-trip). The records themselves (`ConnectRequest`, `Stat`, ...)
are generated from proto/zookeeper.jute into `zk_records.py` and are built on `Reader`/`Writer`.

Every length is checked against what is left of the packet before anything is allocated: a
buffer or string may not claim more bytes than remain, a vector may not claim more items than
could fit (each item takes at least `min_size` bytes), and any other negative length, a read past
the end or a string that is not UTF-8 raises `JuteError` saying what was wrong and at which
offset. The decoder therefore never builds more than the packet holds, whatever it claims.

Booleans are read as ZooKeeper reads them (`DataInput.readBoolean`: any nonzero byte is true)
and written as 0 or 1.

    >>> w = Writer()
    >>> w.ustring("/a"); w.buffer(None); w.vector([1, 2], Writer.int)
    >>> r = Reader(w.getvalue())
    >>> r.ustring(), r.buffer(), r.vector(Reader.int, 4)
    ('/a', None, [1, 2])
    >>> r.expect_end()
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, Callable, Iterable, TypeVar

if TYPE_CHECKING:
    from typing import Protocol

    class _Record(Protocol):
        def write(self, w: Writer) -> None: ...

T = TypeVar("T")
R = TypeVar("R")

_INT = struct.Struct("!i")
_LONG = struct.Struct("!q")
_BOOL = struct.Struct("!?")
_NULL = _INT.pack(-1)
_FALSE_TRUE = (b"\x00", b"\x01")


class JuteError(ValueError):
    """A malformed or out-of-range jute packet (or a value that cannot be encoded)."""


def _decode_utf8(raw: bytes | memoryview, offset: int) -> str:
    """Strict UTF-8, also accepting what Java's jute writer sends for characters beyond the BMP:
    each UTF-16 surrogate as its own 3-byte sequence (CESU-8), joined back into one character."""
    try:
        return str(raw, "utf-8")
    except UnicodeDecodeError as exc:
        try:
            joined = str(raw, "utf-8", "surrogatepass").encode("utf-16-le", "surrogatepass")
            return joined.decode("utf-16-le")
        except UnicodeError:
            raise JuteError(f"string at offset {offset} is not UTF-8 ({exc.reason} at byte "
                            f"{exc.start})") from None


class Reader:
    """Reads jute values from one packet (bytes, bytearray or memoryview), front to back."""

    __slots__ = ("_buf", "_pos", "_end")

    def __init__(self, data: bytes | bytearray | memoryview, offset: int = 0) -> None:
        self._buf = data
        self._pos = offset
        self._end = len(data)
        if not 0 <= offset <= self._end:
            raise JuteError(f"offset {offset} outside a {self._end}-byte packet")

    @property
    def offset(self) -> int:
        """How far into the packet the next read starts."""
        return self._pos

    def remaining(self) -> int:
        return self._end - self._pos

    def done(self) -> bool:
        return self._pos >= self._end

    def expect_end(self, what: str = "record") -> None:
        """Raise unless the whole packet has been read."""
        if self._pos != self._end:
            raise JuteError(f"{self._end - self._pos} unread bytes after the {what} "
                            f"(offset {self._pos} of {self._end})")

    def _short(self, need: int, what: str) -> JuteError:
        return JuteError(f"packet ends inside {what} at offset {self._pos}: "
                         f"needs {need} bytes, {self._end - self._pos} left")

    def unpack(self, st: struct.Struct, what: str = "fields") -> tuple[Any, ...]:
        """Several fixed-size fields at once, laid out by a precompiled big-endian Struct."""
        pos = self._pos
        end = pos + st.size
        if end > self._end:
            raise self._short(st.size, what)
        self._pos = end
        return st.unpack_from(self._buf, pos)

    def int(self) -> int:
        pos = self._pos
        if pos + 4 > self._end:
            raise self._short(4, "an int")
        self._pos = pos + 4
        return _INT.unpack_from(self._buf, pos)[0]

    def long(self) -> int:
        pos = self._pos
        if pos + 8 > self._end:
            raise self._short(8, "a long")
        self._pos = pos + 8
        return _LONG.unpack_from(self._buf, pos)[0]

    def bool(self) -> bool:
        pos = self._pos
        if pos + 1 > self._end:
            raise self._short(1, "a boolean")
        self._pos = pos + 1
        return _BOOL.unpack_from(self._buf, pos)[0]

    def _length(self, what: str, unit: int) -> int:
        """A length or count prefix: -1 (null) or 0..what-fits-in-the-rest, else JuteError."""
        at = self._pos
        n = self.int()
        if n == -1:
            return n
        if n < 0:
            raise JuteError(f"negative {what} length {n} at offset {at}")
        if n * unit > self._end - self._pos:
            raise JuteError(f"{what} length {n} at offset {at} exceeds the packet: "
                            f"{self._end - self._pos} bytes left")
        return n

    def _bytes(self, n: int) -> bytes | memoryview:
        pos = self._pos
        self._pos = pos + n
        return self._buf[pos:pos + n]

    def buffer(self) -> bytes | None:
        n = self._length("buffer", 1)
        if n == -1:
            return None
        return bytes(self._bytes(n))

    def ustring(self) -> str | None:
        at = self._pos + 4
        n = self._length("string", 1)
        if n == -1:
            return None
        return _decode_utf8(self._bytes(n), at)

    def vector(self, read_item: Callable[[Reader], T], min_size: int = 1) -> list[T] | None:
        """A vector whose items `read_item(reader)` decodes, each at least `min_size` bytes."""
        n = self._length("vector", max(min_size, 1))
        if n == -1:
            return None
        return [read_item(self) for _ in range(n)]


class Writer:
    """Builds one jute packet; `getvalue()` returns the bytes so far."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def __len__(self) -> int:
        return len(self._buf)

    def getvalue(self) -> bytes:
        return bytes(self._buf)

    def pack(self, st: struct.Struct, *values: Any) -> None:
        """Several fixed-size fields at once (the counterpart of `Reader.unpack`)."""
        try:
            self._buf += st.pack(*values)
        except struct.error as exc:
            raise JuteError(f"cannot encode {values!r} as {st.format!r}: {exc}") from None

    def int(self, value: int) -> None:
        self.pack(_INT, value)

    def long(self, value: int) -> None:
        self.pack(_LONG, value)

    def bool(self, value: bool) -> None:
        self._buf += _FALSE_TRUE[1 if value else 0]

    def raw(self, data: bytes | bytearray | memoryview) -> None:
        """Bytes as they are, with no length prefix."""
        self._buf += data

    def buffer(self, data: bytes | bytearray | memoryview | None) -> None:
        if data is None:
            self._buf += _NULL
            return
        self.pack(_INT, len(data))
        self._buf += data

    def ustring(self, text: str | None) -> None:
        if text is None:
            self._buf += _NULL
            return
        self.buffer(text.encode("utf-8"))

    def vector(self, items: Iterable[T] | None, write_item: Callable[[Writer, T], None]) -> None:
        """A vector whose items `write_item(writer, item)` encodes; None is written as null."""
        if items is None:
            self._buf += _NULL
            return
        items = list(items)
        self.pack(_INT, len(items))
        for item in items:
            write_item(self, item)

    def record(self, rec: _Record) -> None:
        """A nested record (for `vector(items, Writer.record)`)."""
        rec.write(self)


def encode(rec: _Record) -> bytes:
    """One record's bytes."""
    w = Writer()
    rec.write(w)
    return w.getvalue()


def decode(cls: type[R], data: bytes | bytearray | memoryview) -> R:
    """A record of type `cls` that fills `data` exactly; errors name the record."""
    r = Reader(data)
    try:
        rec = cls.read(r)  # type: ignore[attr-defined]
        r.expect_end(cls.__name__)
    except JuteError as exc:
        raise JuteError(f"{cls.__name__}: {exc}") from None
    return rec
