"""Registers `nandoctor.layers` with Keras as soon as Keras is imported, without importing it.

`import nandoctor` must stay TF-free (the static scan promises it), yet a model saved with
nandoctor's layers should reload without `custom_objects` once nandoctor is imported.
Keras imports a class's module on load only for its own packages, so the layers must be
registered before `load_model`. If Keras is already imported, they are registered now;
otherwise a one-shot import hook registers them right after Keras finishes importing.
"""

from __future__ import annotations

import sys


def _register_layers() -> None:
    import nandoctor.layers  # noqa: F401  (registration happens at import)


class _AfterKerasImport:
    """A meta path finder (the protocol is `find_spec` alone: importlib.abc's base class would
    cost every `import nandoctor` a twentieth of a cached scan's time, for nothing)."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        import importlib.util

        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            execute = spec.loader.exec_module

            def exec_module(module):
                execute(module)
                _register_layers()

            spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    if "keras" in sys.modules:
        _register_layers()
    elif not any(isinstance(finder, _AfterKerasImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterKerasImport())
