"""Regenerate the Python code for proto/dcli/v1/*.proto into dcli/v1/ (run by `make proto`).

`--check` compares instead of writing, and exits 1 when the committed code is stale.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
OUT_PKG = Path("dcli") / "v1"


def generate(out_root: Path) -> list[Path]:
    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in (PROTO_DIR / "dcli" / "v1").glob("*.proto"))
    args = ["protoc", f"-I{PROTO_DIR}", f"-I{include}", f"--python_out={out_root}",
            f"--pyi_out={out_root}", f"--grpc_python_out={out_root}", *protos]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted((out_root / OUT_PKG).glob("*_pb2*.py*"))


def main() -> int:
    check = "--check" in sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        fresh = {p.name: p.read_bytes() for p in generate(Path(tmp))}
    target = ROOT / OUT_PKG
    if check:
        current = {p.name: p.read_bytes() for p in target.glob("*_pb2*.py*")}
        if current != fresh:
            print("generated code in dcli/v1 is stale: run `make proto`", file=sys.stderr)
            return 1
        return 0
    for name, content in fresh.items():
        (target / name).write_bytes(content)
    (target / "__init__.py").touch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
