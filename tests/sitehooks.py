"""Source of a ``sitecustomize.py`` that touches a marker file when a weightstats function is first
called: a test puts it on a subprocess's PYTHONPATH and signals the run once it is really fitting or
drawing (not still importing). Shared by the interrupt tests and benchmarks/bench_many_layers.py."""

from __future__ import annotations

_TEMPLATE = r'''
import importlib.abc, importlib.util, os, sys

MARK = os.environ[{env!r}]


class _Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != {module!r}:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            original = getattr(module, {attr!r})

            def wrapped(*args, **kwargs):
                open(MARK, "a").close()
                return original(*args, **kwargs)

            setattr(module, {attr!r}, wrapped)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _Hook())
'''


def marking_sitecustomize(module: str, attr: str, env: str) -> str:
    """``sitecustomize.py`` text: calling ``module.attr`` creates the file named by ``$env``."""
    return _TEMPLATE.format(module=module, attr=attr, env=env)
