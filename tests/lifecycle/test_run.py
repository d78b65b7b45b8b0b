"""kitpy.lifecycle.run: start-up failures are one line and an exit status; bugs keep a traceback.

Run as real processes, so what an operator sees is what is asserted.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import pytest

from kitpy.errors import Unavailable
from kitpy.lifecycle.run import describe_failure


def run_service(body: str) -> subprocess.CompletedProcess[str]:
    program = textwrap.dedent(
        """
        from kitpy.lifecycle.run import run

        async def serve():
        {body}

        run(serve(), name="greeter")
        """
    ).format(body=textwrap.indent(textwrap.dedent(body), "    "))
    return subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )


def test_an_address_in_use_is_one_line_and_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_service(
            f"""
            import asyncio
            await asyncio.start_server(lambda r, w: None, "127.0.0.1", {port})
            """
        )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("greeter: cannot start: ")
    assert f"{port}): address already in use" in done.stderr
    assert "pick another address" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_setting_is_one_line_and_exit_2() -> None:
    done = run_service('raise ValueError("the JWT secret must be at least 32 bytes")')
    assert done.returncode == 2
    assert done.stderr == "greeter: bad configuration: the JWT secret must be at least 32 bytes\n"


def test_an_unreachable_dependency_is_one_line_and_exit_1() -> None:
    done = run_service(
        """
        from kitpy.errors import Unavailable
        raise Unavailable("etcd at http://127.0.0.1:1 does not answer")
        """
    )
    assert done.returncode == 1
    assert done.stderr == (
        "greeter: cannot start: etcd at http://127.0.0.1:1 does not answer (UNAVAILABLE)\n"
    )


def test_a_bug_keeps_its_traceback() -> None:
    done = run_service('raise KeyError("a bug")')
    assert done.returncode == 1
    assert "Traceback" in done.stderr
    assert "KeyError" in done.stderr


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (OSError(111, "Connection refused"), 1),
        (Unavailable("down"), 1),
        (TypeError("port must be an int"), 2),
        (RuntimeError("?"), None),
    ],
)
def test_describe_failure_sorts_by_kind(exc: BaseException, status: int | None) -> None:
    failure = describe_failure(exc)
    assert (failure[0] if failure else None) == status
