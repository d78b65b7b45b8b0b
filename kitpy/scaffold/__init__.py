"""Generate a new kitpy service from the template: ``python -m kitpy new NAME [--dir PATH]``.

The template (``kitpy/scaffold/template/``) is a small service in the
``examples/stringsvc`` layout -- a service Protocol and implementation,
endpoints, HTTP and gRPC transports with their own ``.proto``, observability
wiring, config, a Makefile with ``make run`` / ``make test``, and tests.  Its
Python files are real Python (linted in kitpy's own checks) in which the
placeholder package name ``svcname`` is replaced when rendering.

Example::

    project = generate("greeter", directory=Path("~/src").expanduser())
    # ~/src/greeter/{Makefile, pyproject.toml, greeter/...}; project.kitpy says where
    # its Makefile gets kitpy: this checkout or local file, else the package index
"""

from kitpy.scaffold.generate import (
    Scaffolded,
    ScaffoldError,
    generate,
    kitpy_requirement,
    render_names,
    validate_name,
)

__all__ = [
    "ScaffoldError",
    "Scaffolded",
    "generate",
    "kitpy_requirement",
    "render_names",
    "validate_name",
]
