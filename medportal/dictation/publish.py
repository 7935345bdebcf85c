"""Answers from a worker to one dictation websocket (its channel), on a private event loop."""

from __future__ import annotations

import asyncio
import logging

from channels.layers import get_channel_layer
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


class ChannelPublisher:
    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._layer = get_channel_layer()

    def send(self, channel: str, message: dict) -> None:
        # The page may have gone (its channel too): a lost answer is not the worker's failure.
        try:
            self._loop.run_until_complete(self._layer.send(channel, message))
        except (OSError, RedisError) as exc:
            logger.warning("could not answer dictation channel %s (%s)", channel, exc)

    def close(self) -> None:
        self._loop.close()
