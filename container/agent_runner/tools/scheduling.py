"""Scheduled tasks: schedule_task, list_tasks, cancel_task, pause_task, resume_task.

Tasks live in inbound.db as `kind='task'` rows, which only the host writes; so
these tools read tasks directly but change them by asking the host (system
actions). Times are checked and converted here — the agent writes its user's
local time or ISO 8601, the host receives UTC in the session-DB form — and a
cron recurrence is validated with croniter before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from croniter import croniter

from agent_runner import clock
from agent_runner.db import InboundMessage
from agent_runner.tools.base import (
    ToolContext,
    ToolInputError,
    ToolResult,
    ToolSpec,
    ok,
    optional_text,
    schema,
    text_arg,
)
from agent_runner.tools.targets import current_route, request_action

TASK_STATUSES = ("pending", "paused", "processing", "completed", "failed")
TASK_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
PAST_TOLERANCE = timedelta(minutes=1)
PROMPT_PREVIEW = 80


def schedule_task(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    prompt = text_arg(args, "prompt", max_len=20_000)
    script = optional_text(args, "script", max_len=20_000)
    recurrence = _cron(optional_text(args, "recurrence", max_len=200))
    when_text = optional_text(args, "processAfter", max_len=100)
    zone = ctx.config.timezone
    now = clock.utc_now()
    if when_text is not None:
        try:
            first = clock.parse_user_time(when_text, zone)
        except ValueError as exc:
            raise ToolInputError(f"processAfter: {exc}") from None
        if first < now - PAST_TOLERANCE:
            raise ToolInputError(
                f"processAfter {when_text} is in the past (now is {now.astimezone(zone):%Y-%m-%d %H:%M} local time)"
            )
    elif recurrence is not None:
        first = croniter(recurrence, now.astimezone(zone)).get_next(datetime)
    else:
        raise ToolInputError("give processAfter (a time), recurrence (a cron expression), or both")
    route = current_route(ctx)
    ref = request_action(
        ctx,
        "schedule_task",
        {
            "prompt": prompt,
            "script": script,
            "processAfter": clock.to_sql(first),
            "recurrence": recurrence,
            "platformId": route.platform_id if route else None,
            "channelType": route.channel_type if route else None,
            "threadId": route.thread_id if route else None,
        },
        prefix="task",
        id_field="taskId",
    )
    repeat = f", then on cron '{recurrence}' ({_zone_name(ctx)})" if recurrence else ""
    return ok(f"Task {ref.id} scheduled: first run {first.astimezone(zone):%Y-%m-%d %H:%M} local time{repeat}")


def list_tasks(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    status = optional_text(args, "status", max_len=20)
    if status is not None and status not in TASK_STATUSES:
        raise ToolInputError(f"status must be one of {', '.join(TASK_STATUSES)}")
    tasks = ctx.db.tasks(status)
    if not tasks:
        return ok("No scheduled tasks." if status is None else f"No {status} tasks.")
    return ok("\n".join(_describe(ctx, task) for task in tasks))


def cancel_task(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    task = _task(ctx, args)
    request_action(ctx, "cancel_task", {"taskId": task.id})
    return ok(f"Cancellation of task {task.id} requested")


def pause_task(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    task = _task(ctx, args)
    if task.status == "paused":
        raise ToolInputError(f"task {task.id} is already paused")
    request_action(ctx, "pause_task", {"taskId": task.id})
    return ok(f"Pause of task {task.id} requested")


def resume_task(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    task = _task(ctx, args)
    if task.status != "paused":
        raise ToolInputError(f"task {task.id} is not paused (it is {task.status})")
    request_action(ctx, "resume_task", {"taskId": task.id})
    return ok(f"Resumption of task {task.id} requested")


def _cron(expression: str | None) -> str | None:
    if expression is None:
        return None
    expression = " ".join(expression.split())
    if len(expression.split(" ")) != 5 or not croniter.is_valid(expression):
        raise ToolInputError(
            f"recurrence {expression!r} is not a 5-field cron expression "
            "(minute hour day-of-month month day-of-week), e.g. '0 9 * * 1-5' for weekdays at 09:00"
        )
    return expression


def _task(ctx: ToolContext, args: Mapping[str, Any]) -> InboundMessage:
    task_id = text_arg(args, "taskId", max_len=128).strip()
    if not TASK_ID_RE.match(task_id):
        raise ToolInputError(f"taskId {task_id!r} is not a task id; list_tasks shows them")
    task = next((t for t in ctx.db.tasks(None) if t.id == task_id), None)
    if task is None:
        raise ToolInputError(f"no active task {task_id}; list_tasks shows the active ones")
    return task


def _describe(ctx: ToolContext, task: InboundMessage) -> str:
    when = clock.local_label(task.process_after, ctx.config.timezone) if task.process_after else "now"
    repeat = f" repeats '{task.recurrence}'" if task.recurrence else ""
    prompt = str(task.payload.get("prompt") or task.payload.get("text") or "")
    if len(prompt) > PROMPT_PREVIEW:
        prompt = prompt[:PROMPT_PREVIEW] + "…"
    return f"- {task.id} [{task.status}] next {when}{repeat}: {prompt}"


def _zone_name(ctx: ToolContext) -> str:
    return str(ctx.config.timezone)


TASK_ID = {"taskId": {"type": "string", "description": "The task id (see list_tasks)."}}

TOOLS = [
    ToolSpec(
        "schedule_task",
        "Schedule work for later: a one-off run at processAfter, a recurring run on a cron expression, or both "
        "(the first run at processAfter, then by recurrence). Times without an offset are read in your user's "
        "local time zone. At the time, you receive the prompt as a scheduled task.",
        schema(
            {
                "prompt": {"type": "string", "description": "What to do when the task runs."},
                "processAfter": {
                    "type": "string",
                    "description": "First run, e.g. '2026-05-01 09:00' (local) or '2026-05-01T07:00:00Z'.",
                },
                "recurrence": {
                    "type": "string",
                    "description": "5-field cron in local time, e.g. '0 9 * * 1-5' (weekdays 09:00).",
                },
                "script": {"type": "string", "description": "Optional script whose output is given to you."},
            },
            ["prompt"],
        ),
        schedule_task,
    ),
    ToolSpec(
        "list_tasks",
        "List scheduled tasks (all but completed and failed ones, unless status is given).",
        schema({"status": {"type": "string", "enum": list(TASK_STATUSES)}}),
        list_tasks,
    ),
    ToolSpec("cancel_task", "Cancel a scheduled task for good.", schema(TASK_ID, ["taskId"]), cancel_task),
    ToolSpec("pause_task", "Pause a scheduled task until resumed.", schema(TASK_ID, ["taskId"]), pause_task),
    ToolSpec("resume_task", "Resume a paused task.", schema(TASK_ID, ["taskId"]), resume_task),
]
