"""The daemon: trio at the top, the node in the middle, signals and logs around it."""

from __future__ import annotations

import logging
import os
import signal
import sys

import trio

from node.home import NodeHome
from node.identity import load_or_create_identity
from node.runtime import Node
from node.services import build_services
from node.settings import NodeSettings
from node.store import Store

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
NOISY_LOGGERS = ("libp2p", "multiaddr", "async_service")


def configure_logging(home: NodeHome, level: str) -> None:
    """Log to DIR/node.log; libp2p's own chatter only from WARNING up."""
    handler = logging.FileHandler(home.log)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def open_node(settings: NodeSettings) -> Node:
    """Validate settings, prepare the home, load identity and store, build the node."""
    settings.validate()
    home = NodeHome(settings.home)
    home.ensure()
    key_pair = load_or_create_identity(home.identity)
    store = Store(home.database)
    return Node(settings, key_pair, store, build_services(settings.services))


async def _main(node: Node) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_stop_on_signal, node, name="daemon.signals")
        await node.run()
        nursery.cancel_scope.cancel()


async def _stop_on_signal(node: Node) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("signal %s: shutting down", signal.Signals(signum).name)
            node.stop()
            with trio.move_on_after(node.settings.timeouts.shutdown_s):
                await trio.sleep_forever()
            log.error("shutdown took longer than %.1f s; exiting hard", node.settings.timeouts.shutdown_s)
            node.store.close()
            sys.stderr.flush()
            # the event loop is stuck in someone's cleanup: the clean-stop promise wins
            os._exit(1)


def run_daemon(settings: NodeSettings) -> None:
    """Run one node until SIGINT/SIGTERM."""
    node = open_node(settings)
    configure_logging(node.home, settings.log_level)
    try:
        trio.run(_main, node)
    finally:
        node.store.close()
        log.info("node stopped")
