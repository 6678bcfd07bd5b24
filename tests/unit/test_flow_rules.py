"""Pure rules of the message flow: text splitting, trigger rules, session modes, the agent rate limit."""

from __future__ import annotations

import pytest

from actors.rate_limit import PairRateLimiter
from actors.session_modes import effective_mode, session_thread
from actors.text_split import split_text
from actors.triggers import pick_wiring, rules_match
from channels.adapter import InboundChat
from events.model import TriggerRules, Wiring


def _chat(text: str = "hello", sender_id: str = "u1", sender_name: str = "Ana", mention: bool = False) -> InboundChat:
    return InboundChat(
        platform_id="p", message_id="m", sender_id=sender_id, sender_name=sender_name, text=text, is_mention=mention
    )


def _wiring(group: str, rules: TriggerRules, priority: int = 0) -> Wiring:
    return Wiring(
        id=f"w-{group}",
        messaging_group_id="mg",
        agent_group_id=group,
        trigger_rules=rules,
        response_scope="all",
        session_mode="shared",
        priority=priority,
        created_at="2026-01-01 00:00:00",
    )


# -- text splitting ------------------------------------------------------------------------------


def test_short_text_is_one_piece() -> None:
    assert split_text("hello", 10) == ["hello"]
    assert split_text("", 10) == []


def test_split_prefers_paragraphs_then_lines_then_characters() -> None:
    # the blank line fits in the first window; the next window has only a line break; the rest fits
    assert split_text("aaaa bbbb\n\ncccc\ndddd eeee", 12) == ["aaaa bbbb", "cccc", "dddd eeee"]
    lines = split_text("line one\nline two\nline three", 18)
    assert lines == ["line one\nline two", "line three"]
    assert split_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_split_keeps_every_character_in_order() -> None:
    text = "\n\n".join(f"paragraph {n} " + "word " * n for n in range(40))
    pieces = split_text(text, 100)
    assert all(0 < len(p) <= 100 for p in pieces)
    assert "".join(pieces).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(" ", "")


def test_split_refuses_a_zero_limit() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        split_text("x", 0)


# -- trigger rules ------------------------------------------------------------------------------------


def test_no_rules_take_everything() -> None:
    assert rules_match(TriggerRules(), _chat("anything"))


@pytest.mark.parametrize(
    ("rules", "chat", "expected"),
    [
        (TriggerRules(pattern=r"^@bot\b"), _chat("@bot hi"), True),
        (TriggerRules(pattern=r"^@bot\b"), _chat("hi @bot"), False),
        (TriggerRules(pattern=r"(?i)urgent"), _chat("this is URGENT"), True),
        (TriggerRules(mention_only=True), _chat("hi", mention=True), True),
        (TriggerRules(mention_only=True), _chat("hi"), False),
        (TriggerRules(include_senders=["u2", "Bob"]), _chat(sender_id="u2"), True),
        (TriggerRules(include_senders=["u2", "Bob"]), _chat(sender_name="Bob"), True),
        (TriggerRules(include_senders=["u2"]), _chat(sender_id="u1"), False),
        (TriggerRules(exclude_senders=["u1"]), _chat(sender_id="u1"), False),
        (TriggerRules(exclude_senders=["u9"]), _chat(sender_id="u1"), True),
        (TriggerRules(pattern="deploy", include_senders=["u1"]), _chat("deploy now"), True),
        (TriggerRules(pattern="deploy", include_senders=["u1"]), _chat("deploy now", sender_id="u3"), False),
        (TriggerRules(pattern="(unclosed"), _chat("(unclosed"), False),
    ],
)
def test_rules(rules: TriggerRules, chat: InboundChat, expected: bool) -> None:
    assert rules_match(rules, chat) is expected


def test_pick_takes_the_first_matching_wiring_in_priority_order() -> None:
    wirings = [
        _wiring("ops", TriggerRules(pattern="^!ops"), priority=10),
        _wiring("vip", TriggerRules(include_senders=["boss"]), priority=5),
        _wiring("general", TriggerRules(), priority=0),
    ]
    assert pick_wiring(wirings, _chat("!ops restart")).agent_group_id == "ops"  # type: ignore[union-attr]
    assert pick_wiring(wirings, _chat("hi", sender_id="boss")).agent_group_id == "vip"  # type: ignore[union-attr]
    assert pick_wiring(wirings, _chat("hi")).agent_group_id == "general"  # type: ignore[union-attr]
    assert pick_wiring(wirings[:2], _chat("hi")) is None


# -- session modes ------------------------------------------------------------------------------------


def test_threaded_platforms_force_per_thread_except_agent_shared() -> None:
    assert effective_mode("shared", threaded=True) == "per-thread"
    assert effective_mode("per-thread", threaded=True) == "per-thread"
    assert effective_mode("agent-shared", threaded=True) == "agent-shared"
    assert effective_mode("shared", threaded=False) == "shared"
    assert session_thread("per-thread", "t1") == "t1"
    assert session_thread("shared", "t1") is None
    assert session_thread("agent-shared", "t1") is None


# -- rate limit --------------------------------------------------------------------------------------


def test_rate_limit_allows_n_a_minute_per_pair_then_waits_for_the_oldest() -> None:
    limiter = PairRateLimiter(3)
    pair = ("a", "b")
    for t in (0.0, 10.0, 20.0):
        assert limiter.wait_time(pair, t) == 0.0
        limiter.record(pair, t)
    assert limiter.wait_time(pair, 30.0) == pytest.approx(30.0)  # until the send at 0.0 is a minute old
    assert limiter.wait_time(("b", "a"), 30.0) == 0.0  # the other direction is its own pair
    assert limiter.wait_time(("a", "c"), 30.0) == 0.0
    assert limiter.wait_time(pair, 60.0) == 0.0
    limiter.record(pair, 60.0)
    assert limiter.wait_time(pair, 61.0) == pytest.approx(9.0)


def test_rate_limit_needs_a_positive_limit() -> None:
    with pytest.raises(ValueError):
        PairRateLimiter(0)
