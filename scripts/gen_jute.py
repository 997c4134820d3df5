"""Generate dcli/wire/zk_records.py from proto/zookeeper.jute (`make jute`, part of `make proto`).

The jute grammar this reads: `module a.b.c { class Name { type field; ... } ... }`, where a type
is int, long, boolean, buffer, ustring, vector<T>, or another record, named bare (same module) or
with its module (`org.apache.zookeeper.data.Stat`); `//` and `/* */` are comments. Each class
becomes a `@dataclass(slots=True)` with jute's own field names, `write(w)`, `read(r)` and
`MIN_SIZE` (the fewest bytes it can take, which bounds vectors of it). Consecutive int, long
and boolean fields are read and written with one precompiled Struct.

`--check` compares instead of writing, and exits 1 when the committed file is stale.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "proto" / "zookeeper.jute"
TARGET = ROOT / "dcli" / "wire" / "zk_records.py"
WIDTH = 99

# jute type -> (Struct code or None, Python type, Reader/Writer method, fewest bytes)
PRIMITIVES = {
    "int": ("i", "int", "int", 4),
    "long": ("q", "int", "long", 8),
    "boolean": ("?", "bool", "bool", 1),
    "buffer": (None, "bytes | None", "buffer", 4),
    "ustring": (None, "str | None", "ustring", 4),
}
TOKEN = re.compile(r"\s+|//[^\n]*|/\*.*?\*/|(?P<word>[A-Za-z_][\w.]*)|(?P<punct>[{}<>;])", re.S)
RESERVED_LOCALS = {"r", "w", "cls", "self"}


class SpecError(Exception):
    pass


@dataclass
class JType:
    kind: str                   # a primitive's name, "vector" or "record"
    item: JType | None = None   # vector's item type
    ref: str = ""               # record's Python class name


@dataclass
class JField:
    name: str
    type: JType


@dataclass
class JClass:
    module: str
    name: str
    fields: list[JField]


def tokenize(text: str) -> list[tuple[str, int]]:
    tokens, pos = [], 0
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m:
            line = text.count("\n", 0, pos) + 1
            raise SpecError(f"line {line}: unexpected {text[pos]!r}")
        if m.group("word") or m.group("punct"):
            tokens.append((m.group(0), text.count("\n", 0, pos) + 1))
        pos = m.end()
    return tokens


class Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> str:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> str:
        if self.i >= len(self.tokens):
            raise SpecError(f"unexpected end of file, expected {expected or 'more'}")
        tok, line = self.tokens[self.i]
        if expected is not None and tok != expected:
            raise SpecError(f"line {line}: expected {expected!r}, found {tok!r}")
        self.i += 1
        return tok

    def spec(self) -> list[JClass]:
        classes: list[JClass] = []
        while self.peek():
            self.take("module")
            module = self.take()
            self.take("{")
            while self.peek() == "class":
                classes.append(self.klass(module))
            self.take("}")
        return classes

    def klass(self, module: str) -> JClass:
        self.take("class")
        name = self.take()
        self.take("{")
        fields = []
        while self.peek() != "}":
            jtype = self.jtype(module)
            fields.append(JField(self.take(), jtype))
            self.take(";")
        self.take("}")
        return JClass(module, name, fields)

    def jtype(self, module: str) -> JType:
        word = self.take()
        if word in PRIMITIVES:
            return JType(word)
        if word == "vector":
            self.take("<")
            item = self.jtype(module)
            self.take(">")
            return JType("vector", item)
        if word in {"byte", "float", "double", "map"}:
            raise SpecError(f"type {word} is not supported")
        qualified = word if "." in word else f"{module}.{word}"
        return JType("record", ref=qualified)


def resolve(classes: list[JClass]) -> dict[str, JClass]:
    """Python class name -> class; record references rewritten to Python class names."""
    by_qualified = {f"{c.module}.{c.name}": c for c in classes}
    by_name: dict[str, JClass] = {}
    for c in classes:
        if c.name in by_name:
            raise SpecError(f"two classes named {c.name}")
        by_name[c.name] = c

    def fix(t: JType) -> None:
        if t.kind == "vector":
            assert t.item is not None
            fix(t.item)
        elif t.kind == "record":
            if t.ref not in by_qualified:
                raise SpecError(f"unknown record type {t.ref}")
            t.ref = by_qualified[t.ref].name

    for c in classes:
        for f in c.fields:
            fix(f.type)
            if f.name in RESERVED_LOCALS or not f.name.isidentifier():
                raise SpecError(f"{c.name}.{f.name}: field name not usable in Python")
    return by_name


class Emitter:
    def __init__(self, classes: dict[str, JClass]) -> None:
        self.classes = classes
        self.sizes: dict[str, int] = {}

    def min_size(self, t: JType, seen: tuple[str, ...] = ()) -> int:
        if t.kind in PRIMITIVES:
            return PRIMITIVES[t.kind][3]
        if t.kind == "vector":
            return 4
        if t.ref in seen:
            raise SpecError(f"record {t.ref} contains itself")
        if t.ref not in self.sizes:
            fields = self.classes[t.ref].fields
            self.sizes[t.ref] = sum(self.min_size(f.type, seen + (t.ref,)) for f in fields)
        return self.sizes[t.ref]

    def pytype(self, t: JType) -> str:
        if t.kind in PRIMITIVES:
            return PRIMITIVES[t.kind][1]
        if t.kind == "vector":
            assert t.item is not None
            return f"list[{self.pytype(t.item)}] | None"
        return t.ref

    def min_expr(self, t: JType) -> str:
        return f"{t.ref}.MIN_SIZE" if t.kind == "record" else str(self.min_size(t))

    def item_reader(self, t: JType) -> str:
        if t.kind in PRIMITIVES:
            return f"Reader.{PRIMITIVES[t.kind][2]}"
        if t.kind == "record":
            return f"{t.ref}.read"
        assert t.item is not None
        return f"lambda r: r.vector({self.item_reader(t.item)}, {self.min_expr(t.item)})"

    def item_writer(self, t: JType) -> str:
        if t.kind in PRIMITIVES:
            return f"Writer.{PRIMITIVES[t.kind][2]}"
        if t.kind == "record":
            return "Writer.record"
        assert t.item is not None
        return f"lambda w, v: w.vector(v, {self.item_writer(t.item)})"

    @staticmethod
    def runs(fields: list[JField]) -> list[list[JField]]:
        """Fields in order, consecutive fixed-size ones grouped."""
        def fixed(f: JField) -> bool:
            return f.type.kind in PRIMITIVES and PRIMITIVES[f.type.kind][0] is not None

        out: list[list[JField]] = []
        for f in fields:
            if fixed(f) and out and fixed(out[-1][0]):
                out[-1].append(f)
            else:
                out.append([f])
        return out

    def klass(self, c: JClass) -> tuple[list[str], list[str]]:
        """(module-level Struct definitions, class lines)."""
        structs: list[str] = []
        read: list[str] = []
        write: list[str] = []
        runs = self.runs(c.fields)
        for run in runs:
            f = run[0]
            kind = f.type.kind
            if len(run) > 1:
                sname = f"_{c.name}_{len(structs)}"
                fmt = "!" + "".join(PRIMITIVES[x.type.kind][0] or "" for x in run)
                structs.append(f'{sname} = struct.Struct("{fmt}")')
                what = f'"{c.name}"'
                if len(runs) == 1:
                    read.append(f"return cls(*r.unpack({sname}, {what}))")
                else:
                    read.append(wrap(f"{', '.join(x.name for x in run)} = r.unpack(",
                                     [sname, what], ")"))
                write.append(wrap(f"w.pack({sname}, ", [f"self.{x.name}" for x in run], ")"))
            elif kind in PRIMITIVES:
                method = PRIMITIVES[kind][2]
                read.append(f"{f.name} = r.{method}()")
                write.append(f"w.{method}(self.{f.name})")
            elif kind == "record":
                read.append(f"{f.name} = {f.type.ref}.read(r)")
                write.append(f"self.{f.name}.write(w)")
            else:
                assert f.type.item is not None
                item = f.type.item
                reader, least = self.item_reader(item), self.min_expr(item)
                read.append(f"{f.name} = r.vector({reader}, {least})")
                write.append(f"w.vector(self.{f.name}, {self.item_writer(item)})")
        if not (len(runs) == 1 and len(runs[0]) > 1):
            read.append(wrap("return cls(", [f.name for f in c.fields], ")"))
        lines = ["@dataclass(slots=True)", f"class {c.name}:",
                 f'    """{c.module}.{c.name}"""', ""]
        lines += [f"    {f.name}: {self.pytype(f.type)}" for f in c.fields]
        least = self.min_size(JType("record", ref=c.name))
        lines += [f"    MIN_SIZE: ClassVar[int] = {least}", "",
                  "    def write(self, w: Writer) -> None:"]
        lines += [indent(x, 8) for x in (write or ["pass"])]
        lines += ["", "    @classmethod", "    def read(cls, r: Reader) -> Self:"]
        lines += [indent(x, 8) for x in read]
        return structs, lines


def indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.split("\n"))


def wrap(head: str, args: list[str], tail: str, width: int = WIDTH - 8) -> str:
    """`head` + comma-separated args + `tail`, broken under the opening parenthesis if long."""
    one = head + ", ".join(args) + tail
    if len(one) <= width:
        return one
    lines, current = [], head
    for i, a in enumerate(args):
        piece = a + ("," if i < len(args) - 1 else tail)
        if current.strip() and len(current) + len(piece) + 1 > width:
            lines.append(current.rstrip())
            current = " " * len(head)
        current += piece + " "
    lines.append(current.rstrip())
    return "\n".join(lines)


HEADER = '''\
# generated by scripts/gen_jute.py from proto/zookeeper.jute: do not edit
"""ZooKeeper's jute records: one dataclass per class of proto/zookeeper.jute (every module).

Field names are jute's own (`lastZxidSeen`, `ephemeralOwner`), so the records read like
ZooKeeper's source. Each record has `write(w)`, `read(r)` (bounded: see `jute.py`) and MIN_SIZE,
the fewest bytes it can take. Null buffers, strings and vectors are None.

    >>> from dcli.wire.jute import decode, encode
    >>> decode(GetDataRequest, encode(GetDataRequest("/a", True)))
    GetDataRequest(path='/a', watch=True)
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from dcli.wire.jute import Reader, Writer

if TYPE_CHECKING:
    from typing import Self
'''


def generate(text: str) -> str:
    classes = Parser(text).spec()
    emitter = Emitter(resolve(classes))
    structs: list[str] = []
    bodies: list[str] = []
    for c in classes:
        s, lines = emitter.klass(c)
        structs += s
        bodies.append("\n".join(lines))
    names = [c.name for c in classes]
    out = [HEADER, "\n".join(structs), "", "", "\n\n\n".join(bodies), "", "",
           "# every record, in the order of proto/zookeeper.jute",
           wrap("RECORDS: tuple[type, ...] = (", names, ")", WIDTH), ""]
    return "\n".join(out)


def main() -> int:
    fresh = generate(SPEC.read_text(encoding="utf-8"))
    if "--check" in sys.argv[1:]:
        if not TARGET.exists() or TARGET.read_text(encoding="utf-8") != fresh:
            print(f"{TARGET.relative_to(ROOT)} is stale: run `make jute`", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
