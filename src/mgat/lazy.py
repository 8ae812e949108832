"""Modules imported on first use.

Reading a dataset and training never touch pandas, which with pyarrow beside it
costs about 90 MiB of resident memory and half a second to import. The modules
that do use it (importers, splitters, feature extraction) name it through
``LazyModule`` so that importing them, as the command line does to list its
commands, does not import it.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class LazyModule:
    """Stands for the module ``name`` and imports it at the first attribute use."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str):
        module: ModuleType = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"LazyModule({self._name!r})"
