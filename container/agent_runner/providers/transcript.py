"""Archiving a Claude transcript as markdown before the context is compacted.

Compaction replaces the detailed history with a summary; the PreCompact hook
keeps a readable copy under `<group folder>/conversations/`, where the agent
(and its user) can look things up later.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_ENTRY_CHARS = 2000


@dataclass(frozen=True)
class Turn:
    role: str
    text: str


def parse_transcript(lines: str) -> list[Turn]:
    """User and assistant texts from a Claude Code `.jsonl` transcript (tool traffic left out)."""
    turns: list[Turn] = []
    for line in lines.splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(entry, dict) or entry.get("type") not in ("user", "assistant"):
            continue
        message = entry.get("message")
        text = _text_of(message.get("content") if isinstance(message, dict) else None)
        if text:
            turns.append(Turn(str(entry["type"]), text))
    return turns


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, list):
        parts = [str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text"]
        return "".join(parts).strip()
    return ""


def to_markdown(turns: list[Turn], title: str, assistant_name: str, archived_at: datetime) -> str:
    lines = [f"# {title}", "", f"Archived: {archived_at:%Y-%m-%d %H:%M %Z}", "", "---", ""]
    for turn in turns:
        who = "User" if turn.role == "user" else assistant_name
        text = turn.text if len(turn.text) <= MAX_ENTRY_CHARS else turn.text[:MAX_ENTRY_CHARS] + "…"
        lines += [f"**{who}**: {text}", ""]
    return "\n".join(lines)


def _summary(transcript: Path, session_id: str | None) -> str | None:
    index = transcript.parent / "sessions-index.json"
    try:
        entries = json.loads(index.read_text()).get("entries", [])
    except (OSError, ValueError, AttributeError):
        return None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("sessionId") == session_id and entry.get("summary"):
            return str(entry["summary"])
    return None


def archive(
    transcript: Path, session_id: str | None, target_dir: Path, assistant_name: str, zone: tzinfo
) -> Path | None:
    """Write the transcript as `<date>-<slug>.md` in `target_dir`; returns the file, or None if nothing to keep."""
    try:
        turns = parse_transcript(transcript.read_text(errors="replace"))
    except OSError as exc:
        log.warning("cannot read transcript %s: %s", transcript, exc)
        return None
    if not turns:
        return None
    now = datetime.now(zone)
    summary = _summary(transcript, session_id)
    slug = re.sub(r"[^a-z0-9]+", "-", summary.lower()).strip("-")[:50] if summary else ""
    name = slug or f"conversation-{now:%H%M}"
    target_dir.mkdir(parents=True, exist_ok=True)
    path = target_dir / f"{now:%Y-%m-%d}-{name}.md"
    counter = 2
    while path.exists():
        path = target_dir / f"{now:%Y-%m-%d}-{name}-{counter}.md"
        counter += 1
    path.write_text(to_markdown(turns, summary or "Conversation", assistant_name, now))
    return path
