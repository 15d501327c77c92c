"""orthokd's own name: its four packages (training, landscape, diversity, figures) are top-level, so a user's
package of the same name earlier on sys.path (a ``training/`` folder in the working directory, say) would be
imported in their place. ``check_packages`` finds that out and says so in one line."""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

__all__ = ["PACKAGES", "ShadowedPackageError", "check_packages", "export_faces"]

PACKAGES = ("training", "landscape", "diversity", "figures")
_ROOT = Path(__file__).resolve().parent.parent  # the folder holding all five packages (site-packages or a checkout)


class ShadowedPackageError(ImportError):
    """One of orthokd's packages resolves to a foreign module of the same name."""


def _origin(name: str) -> str | None:
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__file__", None)
    spec = importlib.util.find_spec(name)
    return spec.origin if spec is not None else None


def check_packages(*names: str) -> None:
    """Raise ShadowedPackageError unless each of ``names`` (default: all four) is orthokd's own package, the one
    beside this file. Under ``python -m`` (while sys.argv[0] is still "-m") it prints the one line and exits 2."""
    for name in names or PACKAGES:
        origin = _origin(name)
        ours = _ROOT / name / "__init__.py"
        if origin is not None and Path(origin).resolve() == ours:
            continue
        where = origin or f"a package without a file (a namespace folder named {name})"
        message = (f"orthokd's package {name!r} is shadowed by {where}, found first on sys.path; rename that "
                   f"package or run from a folder that does not hold it (orthokd's own is {ours.parent})")
        if sys.argv[:1] == ["-m"]:
            print(f"error: {message}", file=sys.stderr)
            raise SystemExit(2)
        raise ShadowedPackageError(message)


def export_faces(package: str, faces: dict[str, str]) -> None:
    """Give ``package`` its public names: ``faces`` maps each name to the module that defines it, imported on first
    use (so importing the package stays light). A face is a property of the package's module class, so
    ``landscape.sharpness`` is the function ``landscape.sharpness.sharpness`` even after the submodule of the same
    name is imported: the import system's ``setattr(package, name, submodule)`` is ignored for faces, while
    ``from landscape.sharpness import sharpness_report`` still reads the submodule from sys.modules."""
    def face(name: str, module: str) -> property:
        def get(_self):
            return getattr(importlib.import_module(module), name)

        def set_(_self, value):
            if not isinstance(value, types.ModuleType):
                raise AttributeError(f"{package}.{name} is read-only; patch {module}.{name} instead")

        return property(get, set_, doc=f"{module}.{name}")

    namespace = {name: face(name, module) for name, module in faces.items()}
    namespace["__dir__"] = lambda self: sorted(set(self.__dict__) | set(faces))
    sys.modules[package].__class__ = type(f"{package}_package", (types.ModuleType,), namespace)
