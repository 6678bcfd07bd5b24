"""hermitcrab's agent runner: the process inside each session container.

It speaks only the session-DB protocol: it reads `inbound.db` (read-only),
writes `outbound.db` (its own file), and touches `.heartbeat`. It imports no
host package, so the same code runs in the image, from a group's own copy
mounted over /app/agent_runner, and in tests. See docs/agent-runner.md.
"""
