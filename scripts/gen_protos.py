"""Regenerate the Python gRPC stubs (with type stubs) from protos/ into generia_pipelines/proto,
and the descriptor set of the platform's head revision (protos/platform_head/) that the local
stack's drifted mode serves.

grpcio-tools writes absolute imports (``import character_pb2``); they are rewritten to
package-relative imports so the stubs live inside the package. The head revision shares the
specification's package names, so it cannot be imported beside the stubs: it is kept as a
serialized ``FileDescriptorSet`` and loaded into a pool of its own.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "generia_pipelines" / "proto"
HEAD_PROTOS = PROTOS / "platform_head"
HEAD_OUT = ROOT / "generia_pipelines" / "local" / "platform_head.binpb"
_IMPORT = re.compile(r"^import (\w+_pb2)( as \w+)?$", re.MULTILINE)


def generate(out_dir: Path) -> list[Path]:
    """Run protoc on every proto into out_dir and return the files written."""
    from grpc_tools import protoc  # dev dependency, imported lazily

    out_dir.mkdir(parents=True, exist_ok=True)
    protos = sorted(PROTOS.glob("*.proto"))  # platform_head/ is a separate revision
    include = Path(protoc.__file__).parent / "_proto"
    bindir = Path(sys.executable).parent
    args = [
        "protoc",
        f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bindir / 'protoc-gen-mypy_grpc'}",
        f"-I{PROTOS}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *[str(p) for p in protos],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    written = []
    for path in sorted(out_dir.glob("*_pb2*.py*")):
        text = _IMPORT.sub(
            lambda m: f"from . import {m.group(1)}{m.group(2) or ''}", path.read_text()
        )
        path.write_text(text)
        written.append(path)
    (out_dir / "__init__.py").write_text(
        '"""Generated gRPC stubs; regenerate with scripts/gen_protos.py."""\n'
    )
    written.append(out_dir / "__init__.py")
    return written


def generate_head(out_file: Path) -> Path:
    """Compile the platform's head revision into one serialized FileDescriptorSet."""
    from grpc_tools import protoc

    args = [
        "protoc",
        f"-I{HEAD_PROTOS}",
        f"--descriptor_set_out={out_file}",
        *[str(p) for p in sorted(HEAD_PROTOS.glob("*.proto"))],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed on protos/platform_head")
    return out_file


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed stubs are stale")
    opts = parser.parse_args()
    if not opts.check:
        if OUT.exists():
            shutil.rmtree(OUT)
        for path in [*generate(OUT), generate_head(HEAD_OUT)]:
            print(path.relative_to(ROOT))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = {p.name: p.read_bytes() for p in generate(Path(tmp))}
        fresh[HEAD_OUT.name] = generate_head(Path(tmp) / HEAD_OUT.name).read_bytes()
    committed = {p.name: p.read_bytes() for p in OUT.glob("*.py*")}
    if HEAD_OUT.exists():
        committed[HEAD_OUT.name] = HEAD_OUT.read_bytes()
    stale = sorted(n for n in fresh.keys() | committed.keys() if fresh.get(n) != committed.get(n))
    if stale:
        print("stale generated stubs: " + ", ".join(stale), file=sys.stderr)
        return 1
    print("generated stubs are in sync with protos/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
