"""`python -m agent_runner`: wire the runner together and run it until SIGTERM.

Exit codes: 0 after a clean stop, 2 when AGENT_PROVIDER names no provider (the
message on stderr says which names exist; the host records both).
"""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

from agent_runner.config import load_config
from agent_runner.db import SessionDb
from agent_runner.heartbeat import Heartbeat
from agent_runner.poll_loop import PollLoop
from agent_runner.providers.base import ProviderContext
from agent_runner.providers.factory import PROVIDERS, UnknownProvider, create_provider
from agent_runner.tools import build_toolbox
from agent_runner.tools.base import ToolContext
from agent_runner.wake import ChangeSignal, InboundWatcher

log = logging.getLogger("agent_runner")


def main() -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config()
    if config.provider not in PROVIDERS:
        print(f"agent-runner: {UnknownProvider(config.provider)}", file=sys.stderr)
        return 2
    db = SessionDb(config.inbound_db, config.outbound_db).open()
    change = ChangeSignal()
    tools = ToolContext(db=db, config=config, signal=change)
    provider = create_provider(config.provider, ProviderContext(config, build_toolbox(tools)))
    watcher = InboundWatcher(config.inbound_db, change).start()
    loop = PollLoop(config, db, provider, tools, change, Heartbeat(config.heartbeat), watcher)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s", signal.Signals(signum).name)
        loop.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        loop.run()
    finally:
        watcher.stop()
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
