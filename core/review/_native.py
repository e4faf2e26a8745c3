"""Which implementation of the reviewer's hot modules runs: the mypyc-compiled extensions or their
Python sources.

``setup.py`` compiles :data:`MODULES` with mypyc into extensions that sit next to the ``.py`` files
(an editable install builds them in place), and records a hash of each source it compiled in
``_native_build.json``. Python's import system prefers an extension over a source file of the same
name, so an extension built from an older source would silently run old code after an edit; this
module, run by the package before anything imports the reviewer, loads the sources instead when:

* ``DATAENG_PURE_PYTHON`` is set (also a way to compare both implementations),
* no extension was built (no compiler, or a pure install), or
* any compiled source changed since the build (the four modules are one compiled group: either all
  compiled or all source).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from pathlib import Path

# setup.py reads these two literals (it cannot import this module before the package is installed)
#: the compiled modules, in dependency order
MODULES = ("pyast", "context", "airflow_model", "airflow_checks")
#: mypyc's group of them: its shared library, which their extensions load, is ``<GROUP>__mypyc``
GROUP = "reviewer"
GROUP_LIBRARY = f"{GROUP}__mypyc"
_HERE = Path(__file__).parent
_PACKAGE = __name__.rpartition(".")[0]


def _extension_built(module: str) -> bool:
    return any((_HERE / f"{module}{suffix}").is_file() for suffix in importlib.machinery.EXTENSION_SUFFIXES)


def _changed_since_build() -> list[str] | None:
    """The compiled modules whose source differs from what was compiled; None without a build record."""
    try:
        record = json.loads((_HERE / "_native_build.json").read_text(encoding="utf-8"))
        built: dict[str, str] = record["sources"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return [
        m for m in MODULES
        if built.get(m) != hashlib.sha256((_HERE / f"{m}.py").read_bytes()).hexdigest()
    ]


def _load_sources() -> None:
    package = sys.modules[_PACKAGE]
    for name in MODULES:
        fullname = f"{_PACKAGE}.{name}"
        if fullname in sys.modules:
            continue
        loader = importlib.machinery.SourceFileLoader(fullname, str(_HERE / f"{name}.py"))
        spec = importlib.util.spec_from_file_location(fullname, _HERE / f"{name}.py", loader=loader)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[fullname] = module
        try:
            loader.exec_module(module)
        except BaseException:
            del sys.modules[fullname]
            raise
        setattr(package, name, module)


def _select() -> tuple[str, str]:
    if os.environ.get("DATAENG_PURE_PYTHON"):
        _load_sources()
        return "source", "DATAENG_PURE_PYTHON is set"
    built = [m for m in (*MODULES, GROUP_LIBRARY) if _extension_built(m)]
    if not built:  # the plain import system finds the sources
        return "source", "no compiled extensions (installed with DATAENG_PURE_PYTHON, without mypyc or a C compiler)"
    if len(built) < len(MODULES) + 1:
        _load_sources()
        return "source", "only some compiled extensions are present"
    changed = _changed_since_build()
    if changed is None or changed:
        what = ", ".join(f"{m}.py" for m in changed) if changed else "no build record"
        warnings.warn(
            f"the compiled pipeline reviewer is older than its source ({what}); running the Python "
            "source instead. Reinstall the package (pip install -e .) to compile it again.",
            RuntimeWarning,
            stacklevel=2,
        )
        _load_sources()
        return "source", f"changed since the last build: {what}"
    return "compiled", "mypyc extensions built from the current sources"


#: ``("compiled" | "source", why)``: which implementation this process runs
IMPLEMENTATION: tuple[str, str] = _select()
