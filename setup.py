"""Build hook: generate the CSI gRPC stubs from proto/csi.proto with grpcio-tools.

The stubs are never committed. ``build_py`` writes them into the package ``s3csi.csi.proto``:

- a regular build (``pip install .``, ``pip wheel .``) writes them into the build directory, so the
  wheel carries them;
- an editable install (``pip install -e .``: setuptools runs ``build_py`` in editable mode) and
  ``python setup.py build_py --inplace`` (a development checkout whose editable install already
  exists) write them into ``src/s3csi/csi/proto/``, which git ignores.

Everything else about the package is declared in pyproject.toml.
"""

from __future__ import annotations

import importlib.resources
import re
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py as _build_py

ROOT = Path(__file__).resolve().parent
PROTO = ROOT / "proto" / "csi.proto"
PACKAGE_PATH = Path("s3csi", "csi", "proto")


def generate_csi_stubs(out_dir: Path) -> None:
    """Run protoc on proto/csi.proto into ``out_dir`` as a package with package-relative imports."""
    from grpc_tools import protoc  # a build requirement (pyproject [build-system])

    well_known = importlib.resources.files("grpc_tools") / "_proto"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"--proto_path={PROTO.parent}",
            f"--proto_path={well_known}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            str(PROTO),
        ]
    )
    if status != 0:
        raise SystemExit(f"grpc_tools.protoc failed on {PROTO} (exit status {status})")
    # protoc writes `import csi_pb2` as if the output directory were on sys.path.
    grpc_module = out_dir / "csi_pb2_grpc.py"
    text = grpc_module.read_text()
    fixed = re.sub(r"^import csi_pb2 as csi__pb2$", "from . import csi_pb2 as csi__pb2", text, flags=re.M)
    if fixed == text:
        raise SystemExit(f"{grpc_module}: the import of csi_pb2 to make package-relative was not found")
    grpc_module.write_text(fixed)
    (out_dir / "__init__.py").write_text(
        '"""CSI v1 messages and services, generated from proto/csi.proto at install time (setup.py)."""\n'
    )


class build_py(_build_py):
    user_options = [
        *_build_py.user_options,
        ("inplace", None, "only (re)generate the CSI stubs in src/ for an existing editable install"),
    ]
    boolean_options = [*_build_py.boolean_options, "inplace"]

    def initialize_options(self) -> None:
        super().initialize_options()
        self.inplace = False

    def run(self) -> None:
        if self.inplace or self.editable_mode:
            generate_csi_stubs(ROOT / "src" / PACKAGE_PATH)
            if self.inplace:
                return
        super().run()
        if not self.editable_mode:
            generate_csi_stubs(Path(self.build_lib) / PACKAGE_PATH)


setup(cmdclass={"build_py": build_py})
