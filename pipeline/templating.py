"""Rendered documents (model card, report, benchmarks) come from Jinja2 templates in ``pipeline/templates``.

Python code builds a *view* (plain values, already formatted) and the template lays it out, so wording and
layout live in one readable file per document. HTML templates are autoescaped; Markdown ones are not.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).parent / "templates"
DATA_DEPS = ("pipeline/templates",)  # read at run time: a stage that renders depends on them (see dvc.yaml)


@lru_cache(maxsize=1)
def _env():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2", "svg.j2")),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **context: Any) -> str:
    return _env().get_template(template).render(**context)


def render_macro(template: str, macro: str, *args: Any) -> str:
    """One macro of a template (e.g. a single SVG plot), autoescaped like an HTML page."""
    return _env().get_template(template).module.__getattribute__(macro)(*args)
