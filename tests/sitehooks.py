"""Source of a ``sitecustomize.py`` that runs a few lines each time a weightstats function is
called: a test puts it on a subprocess's PYTHONPATH to signal a run once it is really fitting or
drawing (not still importing), or to deliver a signal at an awkward moment. Shared by the interrupt
tests and benchmarks/bench_many_layers.py."""

from __future__ import annotations

import textwrap

_TEMPLATE = r'''
import importlib.abc, importlib.util, os, signal, sys, time

{prelude}


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
{on_call}
                return original(*args, **kwargs)

            setattr(module, {attr!r}, wrapped)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _Hook())
'''


def wrapping_sitecustomize(module: str, attr: str, on_call: str, prelude: str = "") -> str:
    """``sitecustomize.py`` text that runs ``on_call`` before every call of ``module.attr``;
    ``prelude`` is module-level code (names ``on_call`` uses)."""
    return _TEMPLATE.format(module=module, attr=attr, prelude=textwrap.dedent(prelude).strip(),
                            on_call=textwrap.indent(textwrap.dedent(on_call).strip(), " " * 16))


def marking_sitecustomize(module: str, attr: str, env: str) -> str:
    """``sitecustomize.py`` text: calling ``module.attr`` creates the file named by ``$env``."""
    return wrapping_sitecustomize(module, attr, 'open(MARK, "a").close()',
                                  f"MARK = os.environ[{env!r}]")
