"""The DDL is one text shared by the host, the runner and the protocol document."""

from __future__ import annotations

import re
from pathlib import Path

from agent_runner import db as runner_db
from sessiondb.schema import INBOUND_EXTENSIONS, INBOUND_SCHEMA, OUTBOUND_SCHEMA

DOC = Path(__file__).resolve().parents[2] / "docs" / "session-protocol.md"


def _statements(sql: str) -> list[str]:
    without_comments = re.sub(r"--[^\n]*", "", sql)
    return [" ".join(part.split()) for part in without_comments.split(";") if part.strip()]


def test_the_protocol_document_carries_the_ddl_verbatim() -> None:
    blocks = re.findall(r"```sql\n(.*?)```", DOC.read_text(), flags=re.S)
    assert _statements("".join(blocks)) == _statements(INBOUND_SCHEMA) + _statements(OUTBOUND_SCHEMA)


def test_the_runner_creates_outbound_db_with_the_same_ddl() -> None:
    assert _statements(runner_db.OUTBOUND_SCHEMA) == _statements(OUTBOUND_SCHEMA)


def test_every_extension_column_is_in_the_schema_with_its_default() -> None:
    statements = " ".join(_statements(INBOUND_SCHEMA))
    for ext in INBOUND_EXTENSIONS:
        assert f"{ext.column} {ext.declaration}" in statements
        assert ext.column in DOC.read_text()
