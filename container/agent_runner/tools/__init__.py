"""The agent's tools (served to Claude as the in-process MCP server `hermitcrab`)."""

from __future__ import annotations

from agent_runner.tools import admin, interactive, messaging, scheduling
from agent_runner.tools.base import ToolBox, ToolContext, ToolSpec

ALL_TOOLS: tuple[ToolSpec, ...] = (
    *messaging.TOOLS,
    *interactive.TOOLS,
    *scheduling.TOOLS,
    *admin.TOOLS,
)


def build_toolbox(context: ToolContext) -> ToolBox:
    """Every tool this runner offers; admin-only ones only in the admin group's container."""
    return ToolBox(context, [spec for spec in ALL_TOOLS if context.config.is_admin or not spec.admin_only])
