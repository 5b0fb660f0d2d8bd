"""Module attributes imported on first use, so that importing a package does not import
Keras before the caller (the CLI, a notebook) has chosen the backend."""

import importlib


def exports(package, names):
    """A module `__getattr__` serving `names` ({attribute: module path}) for `package`."""

    def __getattr__(name):
        if name in names:
            return getattr(importlib.import_module(names[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
