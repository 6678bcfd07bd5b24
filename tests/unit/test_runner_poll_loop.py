"""The poll loop with the echo provider, run in-process against real session DB files."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from agent_runner.providers.base import AgentQuery, EventSink, Finished, Init, ProviderContext, QueryInput, Result
from agent_runner.providers.echo import EchoProvider
from tests.unit.runner_support import (
    MAIN_CHAT,
    MAIN_DEST,
    RunningLoop,
    acks,
    add_message,
    chat,
    create_inbound,
    create_session,
    make_parts,
    outbound_rows,
    set_destinations,
    state,
    wait_for,
)

MAIN = MAIN_DEST


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return create_session(tmp_path)


def texts(rows: list[dict[str, object]]) -> list[str]:
    return [str(r["body"]["text"]) for r in rows]  # type: ignore[index]


def test_replies_with_odd_seq_and_routing_and_acks(ws: Path) -> None:
    add_message(ws, "m1", chat("hello"), thread_id="th-1")
    with RunningLoop(ws) as running:
        [reply] = running.wait_replies(1)
        assert reply["body"] == {"text": "echo: hello"}
        assert reply["seq"] % 2 == 1 and reply["seq"] > 2
        assert (reply["channel_type"], reply["platform_id"], reply["thread_id"]) == (*MAIN_CHAT, "th-1")
        assert reply["in_reply_to"] == "m1"
        wait_for(lambda: acks(ws).get("m1") == "completed", what="completion ack")
        assert os.path.exists(ws / ".heartbeat")


def test_follow_ups_join_the_running_query(ws: Path) -> None:
    add_message(ws, "m1", chat("!sleep 0.6\nfirst"))
    with RunningLoop(ws) as running:
        wait_for(lambda: acks(ws).get("m1") == "processing", what="m1 claimed")
        add_message(ws, "m2", chat("second"))
        wait_for(lambda: acks(ws).get("m2") == "processing", what="m2 pushed while m1 runs")
        replies = running.wait_replies(2)
        assert texts(replies) == ["echo: first", "echo: second"]
        assert [r["in_reply_to"] for r in replies] == ["m1", "m2"]
        # Later messages still go into the same (still open) query.
        add_message(ws, "m3", chat("third"))
        running.wait_replies(3)
        assert running.loop.queries_started == 1
        assert len({v for k, v in state(ws).items() if k == "continuation:echo"}) == 1


def test_stale_processing_acks_are_cleared_on_start(ws: Path) -> None:
    add_message(ws, "m1", chat("left behind"))
    parts = make_parts(ws)
    parts.db.mark(["m1"], "processing")
    parts.db.mark(["m0"], "completed")
    parts.db.close()
    with RunningLoop(ws) as running:
        assert texts(running.wait_replies(1)) == ["echo: left behind"]
        assert acks(ws)["m0"] == "completed"


def test_completed_rows_are_not_taken_again(ws: Path) -> None:
    add_message(ws, "m1", chat("already answered"))
    parts = make_parts(ws)
    parts.db.mark(["m1"], "completed")
    parts.db.close()
    add_message(ws, "m2", chat("new"))
    with RunningLoop(ws) as running:
        assert texts(running.wait_replies(1)) == ["echo: new"]
        time.sleep(0.3)
        assert len(running.replies()) == 1


def test_continuation_is_stored_at_once_and_resumed(ws: Path) -> None:
    add_message(ws, "m1", chat("hi"))
    with RunningLoop(ws) as running:
        running.wait_replies(1)
        first = state(ws)["continuation:echo"]
        assert first.startswith("echo-")
    add_message(ws, "m2", chat("again"))
    with RunningLoop(ws) as running:
        running.wait_replies(2)
        assert running.loop.continuation == first
        assert state(ws)["continuation:echo"] == first


def test_continuation_is_keyed_by_provider(ws: Path) -> None:
    parts = make_parts(ws)
    parts.db.set_state("continuation:claude", "claude-session-uuid")
    parts.db.close()
    add_message(ws, "m1", chat("hi"))
    with RunningLoop(ws) as running:
        assert texts(running.wait_replies(1)) == ["echo: hi"]  # never handed Claude's id
    assert state(ws)["continuation:claude"] == "claude-session-uuid"


def test_clear_by_admin_resets_the_continuation(ws: Path) -> None:
    add_message(ws, "m1", chat("hi"))
    with RunningLoop(ws) as running:
        running.wait_replies(1)
        old = state(ws)["continuation:echo"]
        add_message(ws, "m2", chat("/clear", sender_id="user-admin"))
        replies = running.wait_replies(2)
        assert replies[1]["body"]["text"] == "Session cleared."
        wait_for(lambda: acks(ws).get("m2") == "completed", what="/clear completed")
        assert "continuation:echo" not in state(ws)
        add_message(ws, "m3", chat("fresh start"))
        running.wait_replies(3)
        new = wait_for(lambda: state(ws).get("continuation:echo"), what="new continuation")
        assert new != old
        assert running.loop.queries_started == 2  # the command ended the first query


def test_admin_command_from_someone_else_is_denied(ws: Path) -> None:
    add_message(ws, "m1", chat("/clear", sender_id="user-mallory"))
    with RunningLoop(ws) as running:
        [reply] = running.wait_replies(1)
        assert reply["body"]["text"] == "Permission denied: /clear requires admin access."
        wait_for(lambda: acks(ws).get("m1") == "completed", what="denied command completed")
        assert running.loop.queries_started == 0


def test_filtered_commands_are_dropped_silently(ws: Path) -> None:
    add_message(ws, "m1", chat("/login"))
    add_message(ws, "m2", chat("/help"))
    with RunningLoop(ws) as running:
        wait_for(lambda: acks(ws) == {"m1": "completed", "m2": "completed"}, what="filtered completed")
        time.sleep(0.2)
        assert running.replies() == []
        assert running.loop.queries_started == 0


def test_passthrough_and_allowed_admin_commands_reach_the_provider(ws: Path) -> None:
    add_message(ws, "m1", chat("/my-skill now"))
    add_message(ws, "m2", chat("/compact", sender_id="user-admin"))
    with RunningLoop(ws) as running:
        [reply] = running.wait_replies(1)
        assert reply["body"]["text"] == "echo: /my-skill now\n/compact"  # echo has no native commands: XML


def test_on_wake_rows_only_for_a_fresh_runner(ws: Path) -> None:
    add_message(ws, "w1", chat("resume note"), on_wake=True)
    with RunningLoop(ws) as running:
        assert texts(running.wait_replies(1)) == ["echo: resume note"]
        add_message(ws, "w2", chat("note for the next container"), on_wake=True)
        add_message(ws, "m3", chat("normal"))
        wait_for(lambda: len(running.replies()) == 2, what="normal reply")
        time.sleep(0.3)
        assert texts(running.replies()) == ["echo: resume note", "echo: normal"]
        assert "w2" not in acks(ws)
    with RunningLoop(ws) as running:
        assert texts(running.wait_replies(3))[-1] == "echo: note for the next container"


def test_inbound_without_on_wake_column_is_tolerated(tmp_path: Path) -> None:
    create_inbound(tmp_path / "inbound.db", on_wake_column=False)
    set_destinations(tmp_path, [MAIN])
    add_message(tmp_path, "m1", chat("old schema"))
    with RunningLoop(tmp_path) as running:
        assert texts(running.wait_replies(1)) == ["echo: old schema"]


def test_future_rows_wait_until_due(ws: Path) -> None:
    add_message(ws, "t1", {"prompt": "later"}, kind="task", process_after="2999-01-01 00:00:00")
    add_message(ws, "t2", {"prompt": "past due"}, kind="task", process_after="2000-01-01 00:00:00")
    with RunningLoop(ws) as running:
        assert texts(running.wait_replies(1)) == ["echo: [SCHEDULED TASK]\n\nInstructions:\npast due"]
        time.sleep(0.3)
        assert "t1" not in acks(ws)


def test_provider_error_answers_with_error_and_completes(ws: Path) -> None:
    add_message(ws, "m1", chat("!fail the model is down"))
    with RunningLoop(ws) as running:
        [reply] = running.wait_replies(1)
        assert reply["body"]["text"] == "Error: the model is down"
        wait_for(lambda: acks(ws).get("m1") == "completed", what="failed message completed")
        add_message(ws, "m2", chat("still alive?"))
        assert texts(running.wait_replies(2))[-1] == "echo: still alive?"


def test_stale_continuation_is_dropped_and_the_message_retried(ws: Path) -> None:
    parts = make_parts(ws)
    parts.db.set_state("continuation:echo", "gone-session")
    parts.db.close()
    add_message(ws, "m1", chat("hello"))
    with RunningLoop(ws) as running:
        assert texts(running.wait_replies(1)) == ["echo: hello"]
        assert state(ws)["continuation:echo"].startswith("echo-")


def test_result_without_text_still_completes(ws: Path) -> None:
    add_message(ws, "m1", chat('!tool send_message {"text": "sent by tool"}\n!silent'))
    with RunningLoop(ws) as running:
        wait_for(lambda: acks(ws).get("m1") == "completed", what="completion without text")
        assert texts(running.replies()) == ["sent by tool"]


def test_message_blocks_in_the_answer_are_routed(ws: Path) -> None:
    add_message(ws, "m1", chat('<message to="other">psst</message>'))
    with RunningLoop(ws) as running:
        [reply] = running.wait_replies(1)
        assert (reply["channel_type"], reply["platform_id"], reply["body"]["text"]) == ("slack", "C-other", "psst")


def test_question_answers_are_left_to_the_waiting_tool(ws: Path) -> None:
    add_message(ws, "m1", chat('!tool ask_user_question {"question": "Tea?", "options": ["yes", "no"], "timeout": 5}'))
    with RunningLoop(ws) as running:
        card = wait_for(lambda: [r for r in outbound_rows(ws) if r["kind"] == "chat-sdk"], what="question card")[0]
        question_id = card["body"]["questionId"]
        assert card["id"] == question_id and card["body"]["options"] == ["yes", "no"]
        answer = {"type": "question_response", "questionId": question_id, "selectedOption": "yes"}
        add_message(ws, "a1", answer, kind="system")
        replies = wait_for(lambda: [r for r in running.replies() if r["kind"] == "chat"], what="answer echoed")
        assert texts(replies) == ["echo: tool ask_user_question: yes"]
        assert acks(ws)["a1"] == "completed"


def test_late_question_answer_reaches_the_agent(ws: Path) -> None:
    add_message(ws, "a1", {"type": "question_response", "questionId": "q-old", "selectedOption": "no"}, kind="system")
    with RunningLoop(ws) as running:
        [reply] = running.wait_replies(1)
        assert "q-old" in reply["body"]["text"] and reply["body"]["text"].endswith(": no")


def test_failing_push_does_not_kill_the_loop(ws: Path) -> None:
    class OnePromptQuery:
        def __init__(self, query: QueryInput, sink: EventSink) -> None:
            sink(Init("one-shot"))
            sink(Result(f"answered {query.prompt.count('<message ')}", frozenset({query.token})))
            self.sink = sink

        def push(self, prompt: str, token: str) -> None:
            self.sink(Finished())
            raise RuntimeError("this backend takes no follow-ups")

        def end(self) -> None:
            self.sink(Finished())

        def abort(self) -> None:
            self.end()

        def join(self, timeout: float) -> bool:
            return True

    class OnePromptProvider:
        name = "oneshot"
        supports_native_slash_commands = False
        started = 0

        def start(self, query: QueryInput, sink: EventSink) -> AgentQuery:
            self.started += 1
            return OnePromptQuery(query, sink)

        def is_session_invalid(self, error: str) -> bool:
            return False

    provider = OnePromptProvider()
    add_message(ws, "m1", chat("one"))
    with RunningLoop(ws, provider=provider) as running:
        running.wait_replies(1)
        add_message(ws, "m2", chat("two"))
        wait_for(lambda: acks(ws).get("m2") == "completed", what="refused follow-up handled by a new query")
        assert provider.started == 2


def test_stop_aborts_a_running_query_and_leaves_it_claimed(ws: Path) -> None:
    add_message(ws, "m1", chat("!sleep 30"))
    running = RunningLoop(ws).__enter__()
    wait_for(lambda: acks(ws).get("m1") == "processing", what="claim")
    started = time.monotonic()
    running.stop()
    assert time.monotonic() - started < 2
    assert acks(ws)["m1"] == "processing"  # the next container clears it and answers


def test_missing_inbound_is_waited_for(tmp_path: Path) -> None:
    with RunningLoop(tmp_path) as running:
        time.sleep(0.3)
        create_inbound(tmp_path / "inbound.db")
        set_destinations(tmp_path, [MAIN])
        add_message(tmp_path, "m1", chat("finally"))
        assert texts(running.wait_replies(1)) == ["echo: finally"]


def test_reads_survive_a_host_holding_the_write_lock(ws: Path) -> None:
    with RunningLoop(ws) as running:
        blocker = sqlite3.connect(ws / "inbound.db", timeout=5)
        blocker.execute("BEGIN EXCLUSIVE")
        blocker.execute(
            "INSERT INTO messages_in (id, seq, kind, timestamp, content, platform_id, channel_type)"
            " VALUES ('m1', 2, 'chat', datetime('now'), '{\"text\": \"locked\"}', ?, ?)",
            (MAIN_CHAT[1], MAIN_CHAT[0]),
        )
        time.sleep(0.5)
        blocker.commit()
        blocker.close()
        assert texts(running.wait_replies(1)) == ["echo: locked"]


def test_echo_provider_is_usable_directly(tmp_path: Path) -> None:
    parts = make_parts(tmp_path)
    events: list[object] = []
    query = EchoProvider(ProviderContext(parts.config, parts.toolbox)).start(
        QueryInput('<message id="2">a &amp; b</message>', "t1", None, ""), events.append
    )
    query.push("plain", "t2")
    query.end()
    assert query.join(2)
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "Init" and kinds[-1] == "Finished"
    results = [e for e in events if isinstance(e, Result)]
    assert [(r.text, r.covers) for r in results] == [
        ("echo: a & b", frozenset({"t1"})),
        ("echo: plain", frozenset({"t2"})),
    ]
    parts.db.close()


def test_a_provider_that_cannot_start_answers_with_an_error(ws: Path) -> None:
    class BrokenProvider:
        name = "broken"
        supports_native_slash_commands = False

        def start(self, query: QueryInput, sink: EventSink) -> AgentQuery:
            raise OSError("claude binary missing")

        def is_session_invalid(self, error: str) -> bool:
            return False

    add_message(ws, "m1", chat("hello"))
    with RunningLoop(ws, provider=BrokenProvider()) as running:
        [reply] = running.wait_replies(1)
        assert reply["body"]["text"] == "Error: the agent could not start: claude binary missing"
        wait_for(lambda: acks(ws).get("m1") == "completed", what="completion after a failed start")
