"""Let a module be called as one of its functions, so a package's public name can be both:
``landscape.sharpness(model, data)`` calls ``landscape.sharpness.sharpness`` while
``from landscape.sharpness import sharpness_report`` keeps working (a plain function bound to the package
name would be replaced by, or would hide, the submodule of the same name)."""
from __future__ import annotations

import sys
import types


class CallableModule(types.ModuleType):
    __call_target__ = ""

    def __call__(self, *args, **kwargs):
        return getattr(self, self.__call_target__)(*args, **kwargs)  # looked up per call: monkeypatching works


def make_callable(module_name: str, function_name: str) -> None:
    """Calling the module ``module_name`` calls its function ``function_name``."""
    module = sys.modules[module_name]
    module.__class__ = CallableModule
    module.__call_target__ = function_name
