"""One confirmed, mandatory publish: the broker stored it in a queue, or we raise.

With publisher confirms (aio-pika's default for a channel) a publish returns
once the broker took responsibility for the message.  ``mandatory`` makes a
message that no queue takes come back instead of vanishing; that is raised as
UNAVAILABLE naming the routing key, and a negative confirm likewise.
"""

from __future__ import annotations

import aio_pika.exceptions
import aiormq.exceptions
from aio_pika.abc import AbstractExchange, AbstractMessage
from pamqp.commands import Basic

from kitpy.errors import DeadlineExceeded, Unavailable

__all__ = ["confirmed_publish"]


async def confirmed_publish(
    exchange: AbstractExchange,
    message: AbstractMessage,
    routing_key: str,
) -> None:
    """Publish ``message``; return once confirmed, else raise Unavailable.

    Bound the wait with ``asyncio.timeout`` around the call; a timeout is
    raised as DEADLINE_EXCEEDED.
    """
    where = f"{exchange.name or 'the default exchange'} with routing key {routing_key!r}"
    try:
        result = await exchange.publish(message, routing_key, mandatory=True)
    except TimeoutError:
        raise DeadlineExceeded(f"the broker did not confirm a publish to {where} in time") from None
    except (aio_pika.exceptions.AMQPError, aiormq.exceptions.AMQPError, ConnectionError) as exc:
        raise Unavailable(f"publish to {where} failed: {type(exc).__name__}") from exc
    if result is None:
        raise Unavailable("the channel has no publisher confirms; open it with them (the default)")
    if not isinstance(result, Basic.Ack):
        raise Unavailable(f"no queue took the message published to {where}")
