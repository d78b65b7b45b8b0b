"""Open-loop load on stringsvc over HTTP and gRPC that accounts for every request.

:func:`run_load` sends requests at a target rate per :class:`Phase`, open
loop: arrivals are a Poisson process (exponential gaps, seeded), each request
sent when due whatever the answers so far.  They cycle through :data:`MIX` --
Uppercase and Count, over HTTP and gRPC, with the same bearer token.  (Random
gaps rather than a fixed period also keep a token bucket from always refusing
the same position of the cycle.)  Each request carries a deadline (``X-Timeout-Ms``
/ the gRPC timeout) and is bounded on the client side at deadline + margin.

Every scheduled request ends with exactly one outcome, counted per phase:

* accounted for: ``ok`` (right answer), ``429 RESOURCE_EXHAUSTED`` and
  ``503 UNAVAILABLE`` (the intended rejections, checked on both the status and
  the error code of the body / gRPC status);
* anything else is a failure: another status or code, a wrong answer, a
  transport error, no answer within deadline + margin (``hung``), an answer
  after it (``late``), or the driver's own concurrency cap reached (``shed by
  driver``: the service is not keeping up).

The callers are the raw libraries (aiohttp; grpc.aio with the generated messages),
so what is checked is what is on the wire.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
import grpc
import grpc.aio
import jwt

from examples.stringsvc.pb import stringsvc_pb2 as pb
from examples.stringsvc.transport_grpc import SERVICE

__all__ = [
    "ACCOUNTED",
    "MIX",
    "OK",
    "RATE_LIMITED",
    "REJECTED",
    "SHED",
    "Caller",
    "GrpcCaller",
    "HttpCaller",
    "Phase",
    "PhaseResult",
    "Tokens",
    "run_load",
]

OK = "ok"
RATE_LIMITED = "429 RESOURCE_EXHAUSTED"
SHED = "503 UNAVAILABLE"
REJECTED = frozenset({RATE_LIMITED, SHED})
ACCOUNTED = frozenset({OK, *REJECTED})
HUNG = "hung: no answer within deadline + margin"
LATE = "late: answered after deadline + margin"
SHED_BY_DRIVER = "shed by driver: concurrency cap reached"

MIX: tuple[tuple[str, str], ...] = (
    ("http", "uppercase"),
    ("grpc", "uppercase"),
    ("http", "count"),
    ("grpc", "uppercase"),
    ("http", "uppercase"),
    ("grpc", "count"),
)
"""The (transport, method) sequence requests cycle through: 2/3 Uppercase, half each transport."""


class Tokens:
    """HS256 bearer tokens for audience ``stringsvc``, re-signed at half their lifetime."""

    def __init__(self, secret: str, *, lifetime: float = 300.0) -> None:
        self._secret = secret
        self._lifetime = lifetime
        self._token = ""
        self._renew_at = 0.0

    def current(self) -> str:
        """A token valid for at least half its lifetime."""
        now = time.time()
        if now >= self._renew_at:
            claims = {"iss": "stringsvc-auth", "aud": "stringsvc", "sub": "soak", "iat": int(now)}
            claims["exp"] = int(now + self._lifetime)
            self._token = jwt.encode(claims, self._secret, algorithm="HS256")
            self._renew_at = now + self._lifetime / 2
        return self._token


def _expected(method: str, text: str) -> str | int:
    return text.upper() if method == "uppercase" else len(text)


class Caller(Protocol):
    """Sends one request; returns ``(outcome, detail)``. Raises only on transport errors."""

    async def __call__(self, method: str, text: str, deadline: float) -> tuple[str, str]: ...


class HttpCaller:
    """Calls stringsvc's JSON routes with aiohttp and classifies the answer."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, tokens: Tokens) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._tokens = tokens

    async def __call__(self, method: str, text: str, deadline: float) -> tuple[str, str]:
        headers = {
            "Authorization": f"Bearer {self._tokens.current()}",
            "Content-Type": "application/json",
            "X-Timeout-Ms": str(int(deadline * 1000)),
        }
        body = json.dumps({"s": text}).encode()
        async with self._session.post(
            f"{self._base}/{method}", data=body, headers=headers
        ) as response:
            status = response.status
            raw = await response.read()
        try:
            payload = json.loads(raw)
        except ValueError:
            return f"HTTP {status} (body not JSON)", raw[:200].decode(errors="replace")
        if status == 200:
            if isinstance(payload, dict) and payload.get("v") == _expected(method, text):
                return OK, ""
            return "wrong answer", repr(payload)[:200]
        error = payload.get("error", {}) if isinstance(payload, dict) else {}
        code = error.get("code") if isinstance(error, dict) else None
        message = str(error.get("message", "")) if isinstance(error, dict) else ""
        if (status, code) == (429, "RESOURCE_EXHAUSTED"):
            return RATE_LIMITED, message
        if (status, code) == (503, "UNAVAILABLE"):
            return SHED, message
        return f"HTTP {status} {code}", message


class GrpcCaller:
    """Calls stringsvc over grpc.aio (the generated messages) and classifies the answer."""

    def __init__(self, channel: grpc.aio.Channel, tokens: Tokens) -> None:
        self._uppercase = channel.unary_unary(
            f"/{SERVICE}/Uppercase",
            request_serializer=pb.UppercaseRequest.SerializeToString,
            response_deserializer=pb.UppercaseResponse.FromString,
        )
        self._count = channel.unary_unary(
            f"/{SERVICE}/Count",
            request_serializer=pb.CountRequest.SerializeToString,
            response_deserializer=pb.CountResponse.FromString,
        )
        self._tokens = tokens

    async def __call__(self, method: str, text: str, deadline: float) -> tuple[str, str]:
        metadata = (("authorization", f"Bearer {self._tokens.current()}"),)
        try:
            if method == "uppercase":
                upper = await self._uppercase(
                    pb.UppercaseRequest(s=text), timeout=deadline, metadata=metadata
                )
                value: str | int = upper.v
            else:
                counted = await self._count(
                    pb.CountRequest(s=text), timeout=deadline, metadata=metadata
                )
                value = counted.v
        except grpc.aio.AioRpcError as err:
            code, details = err.code(), err.details() or ""
            if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
                return RATE_LIMITED, details
            if code is grpc.StatusCode.UNAVAILABLE:
                return SHED, details
            return f"gRPC {code.name}", details
        if value == _expected(method, text):
            return OK, ""
        return "wrong answer", repr(value)[:200]


@dataclass(frozen=True)
class Phase:
    """``seconds`` of load at ``rate`` requests/s (all transports and methods together).

    A ``rate`` of 0 is a pause: nothing is sent (e.g. to let a token bucket refill).

    ``over_limit``: the phase is meant to exceed the proxy's rate limit, so it
    must see 429s; otherwise it must see no rejection at all.  ``until``: end
    the phase early when this event is set (``seconds`` stays the upper bound).
    """

    name: str
    seconds: float
    rate: float
    over_limit: bool = False
    until: asyncio.Event | None = field(default=None, compare=False)


@dataclass
class PhaseResult:
    """What happened to the requests scheduled during one phase."""

    phase: Phase
    scheduled: int = 0
    outcomes: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(transport, method, outcome) -> count."""
    latencies: list[float] = field(default_factory=list)
    details: dict[str, str] = field(default_factory=dict)
    """The first detail seen per failure outcome."""
    max_start_lag: float = 0.0
    """How far the driver fell behind the schedule (its own loop, not the service)."""

    def count(self, outcome: str | None = None, *, transport: str | None = None) -> int:
        """Requests with ``outcome`` (all if None), optionally on one ``transport``."""
        return sum(
            n
            for (t, _, o), n in self.outcomes.items()
            if (outcome is None or o == outcome) and (transport is None or t == transport)
        )

    def failures(self) -> Counter[str]:
        """Outcomes that are neither success nor an intended rejection, with counts."""
        failed: Counter[str] = Counter()
        for (transport, _, outcome), n in self.outcomes.items():
            if outcome not in ACCOUNTED:
                failed[f"{transport}: {outcome}"] += n
        lost = self.scheduled - sum(self.outcomes.values())
        if lost:
            failed["lost: no outcome recorded"] += lost
        return failed

    def problems(self) -> list[str]:
        """Why this phase fails, if it does: failures, or rejections not as intended."""
        found = [f"{self.phase.name}: {n} x {what}" for what, n in self.failures().items()]
        rejected = {o: self.count(o) for o in sorted(REJECTED) if self.count(o)}
        if self.phase.over_limit and not self.count(RATE_LIMITED):
            found.append(f"{self.phase.name}: over the rate limit but no 429 seen")
        if not self.phase.over_limit and rejected:
            found.append(f"{self.phase.name}: expected no rejection, got {rejected}")
        return found


async def run_load(
    phases: Sequence[Phase],
    callers: Mapping[str, Caller],
    *,
    deadline: float = 2.0,
    margin: float = 0.5,
    max_in_flight: int = 256,
    on_phase_end: Callable[[PhaseResult], None] | None = None,
    seed: int = 0,
) -> list[PhaseResult]:
    """Run ``phases`` back to back; return one result per phase once every request ended.

    ``callers`` maps each transport of :data:`MIX` to its :class:`Caller`.
    ``on_phase_end`` is called when a phase's time is up (its requests may
    still be in flight), e.g. to sample the service's memory.  ``seed`` fixes
    the arrival times.
    """
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    tasks: set[asyncio.Task[None]] = set()
    results: list[PhaseResult] = []
    sequence = 0

    async def one(result: PhaseResult, transport: str, method: str, text: str) -> None:
        started = loop.time()
        outcome, detail = "lost: cancelled before an outcome", ""
        try:
            async with asyncio.timeout(deadline + margin):
                outcome, detail = await callers[transport](method, text, deadline)
            if loop.time() - started > deadline + margin:
                outcome, detail = LATE, f"after {loop.time() - started:.3f} s"
        except TimeoutError:
            outcome = HUNG
        except (aiohttp.ClientError, OSError) as exc:
            outcome, detail = f"transport error {type(exc).__name__}", str(exc)[:200]
        except Exception as exc:
            outcome, detail = f"driver error {type(exc).__name__}", str(exc)[:200]
        finally:
            if outcome in ACCOUNTED:
                result.latencies.append(loop.time() - started)
            elif outcome not in result.details:
                result.details[outcome] = detail
            result.outcomes[transport, method, outcome] += 1

    start = loop.time()
    for phase in phases:
        result = PhaseResult(phase)
        results.append(result)
        end = start + phase.seconds
        due = start
        while phase.rate > 0 and (phase.until is None or not phase.until.is_set()):
            due += rng.expovariate(phase.rate)
            if due >= end:
                break
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                result.max_start_lag = max(result.max_start_lag, -delay)
            transport, method = MIX[sequence % len(MIX)]
            text = f"soak {phase.name} {sequence}"
            sequence += 1
            result.scheduled += 1
            if len(tasks) >= max_in_flight:
                result.outcomes[transport, method, SHED_BY_DRIVER] += 1
                continue
            task = loop.create_task(one(result, transport, method, text))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if phase.until is None or not phase.until.is_set():
            await asyncio.sleep(max(0.0, end - loop.time()))
        start = min(end, loop.time())
        if on_phase_end is not None:
            on_phase_end(result)
    if tasks:  # each request bounds itself at deadline + margin; this is a backstop
        async with asyncio.timeout(deadline + margin + 10):
            await asyncio.gather(*tasks)
    return results
