"""Writing reports: everything is rendered in memory first, then written atomically.

Local directories: the files are written into a temporary sibling directory; when ``out_dir`` does
not exist yet the whole directory is renamed into place (one atomic rename), otherwise each file is
moved over its old version with ``os.replace`` (atomic per file). A failure at any point (bad
format, rendering error, full disk) leaves ``out_dir`` exactly as it was — never half-written.

Remote storage: pass ``writer=callable(path, data_bytes)`` — e.g. an Airflow ``ObjectStoragePath``
or fsspec ``open(path, "wb").write`` wrapper. Rendering happens before the first call, so a
rendering failure writes nothing; the writer is then called once per file with
``f"{out_dir}/{name}"``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from dataeng_agents.core.errors import InputError
from dataeng_agents.core.report.model import ExperimentDesignReport, ExperimentReport
from dataeng_agents.core.report.render import render

FileWriter = Callable[[str, bytes], None]
EXTENSIONS = {"json": "json", "md": "md", "markdown": "md", "html": "html"}


def render_files(
    report: ExperimentReport | ExperimentDesignReport,
    formats: Iterable[str] = ("json", "md", "html"),
    *,
    charts: bool = True,
) -> dict[str, tuple[str, bytes]]:
    """``{format: (file name, content)}`` — ``report.json`` / ``design.json`` and so on."""
    stem = "report" if isinstance(report, ExperimentReport) else "design"
    out: dict[str, tuple[str, bytes]] = {}
    for fmt in formats:
        if fmt not in EXTENSIONS:
            raise InputError("formats", f"unknown report format {fmt!r}: use json, md or html")
        out[fmt] = (f"{stem}.{EXTENSIONS[fmt]}", render(report, fmt, charts=charts).encode("utf-8"))
    if not out:
        raise InputError("formats", "no report format given")
    return out


def write_report(
    report: ExperimentReport | ExperimentDesignReport,
    out_dir: str | os.PathLike[str],
    formats: Iterable[str] = ("json", "md", "html"),
    *,
    writer: FileWriter | None = None,
    charts: bool = True,
) -> dict[str, str]:
    """Write the report in ``formats`` into ``out_dir``; return ``{format: path}``.

    :param writer: optional ``callable(path, data)`` for non-local storage (see module docs).
    :param charts: include the SVG charts in the HTML (the screenshot test turns them off).
    """
    return write_files(render_files(report, formats, charts=charts), out_dir, writer=writer)


def write_files(
    files: dict[str, tuple[str, bytes]],
    out_dir: str | os.PathLike[str],
    *,
    writer: FileWriter | None = None,
) -> dict[str, str]:
    """Write already-rendered ``{format: (file name, content)}`` into ``out_dir``; ``{format: path}``.

    Every report kind (experiment, design, pipeline review, lifecycle) goes through here, so all of
    them get the same guarantee: a failure leaves ``out_dir`` as it was (see the module docs).
    """
    if writer is not None:
        base = str(out_dir).rstrip("/")
        paths: dict[str, str] = {}
        for fmt, (name, data) in files.items():
            path = f"{base}/{name}"
            writer(path, data)
            paths[fmt] = path
        return paths

    target = Path(out_dir)
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not target.is_dir():
        raise InputError("out", f"{target} exists and is not a directory")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would survive the rename
        for _fmt, (name, data) in files.items():
            with open(tmp / name, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        if not target.exists():
            os.rename(tmp, target)
        else:
            for _fmt, (name, _data) in files.items():
                os.replace(tmp / name, target / name)
            tmp.rmdir()
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
    return {fmt: str((target / name).resolve()) for fmt, (name, _d) in files.items()}
