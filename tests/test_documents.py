"""Formal documents (文书): each made from the signed event of its decision, the same at
every node that has the events, unchanged by anything written after it."""

from __future__ import annotations

import pytest
from conftest import LEADER, LIAISON, deliver
from test_cases import act, reg

from node import documents
from node.errors import NotFound, ValidationError


def test_every_document_of_a_case_from_acceptance_to_re_review(chain):
    city, town, area, village = chain
    cid = reg(town)
    assert documents.available(town, cid) == []
    act(town, cid, "accept")
    act(town, cid, "reply", decision="reject", reply="经核查，不符合低保条件。")
    act(town, cid, "review_request", LIAISON)
    act(town, cid, "escalate", LIAISON, reason="申请复查")
    deliver(town, city)
    act(city, cid, "review", decision="explain", answer="维持原处理意见。")
    act(city, cid, "recheck_request", LIAISON)
    act(city, cid, "close", LEADER, report="复核终结", signers=["赵领导"], answer="复核维持。")
    found = documents.available(city, cid)
    assert [(d["kind"], d["number"]) for d in found] == [
        ("acceptance", f"{cid}-SL1"), ("decision", f"{cid}-CL1"), ("review", f"{cid}-FC1"),
        ("recheck", f"{cid}-FH1")]
    acceptance = documents.document(city, cid, "acceptance", 1, "zh")
    assert (acceptance["title"], acceptance["office"], acceptance["date"]) == (
        "受理告知书", "zhen 名称", "2026年11月23日")
    assert "第二十三条" in acceptance["paragraphs"][0] and "2027年1月22日" in (
        acceptance["paragraphs"][0])
    assert acceptance["verified"] and acceptance["petitioners"] == ["张三"]
    decision = documents.document(city, cid, "decision", 1, "zh")
    assert "不予支持" in decision["paragraphs"][0]
    assert decision["paragraphs"][1] == "经核查，不符合低保条件。"
    assert "复查" in decision["paragraphs"][2] and "2026年12月23日" in decision["paragraphs"][2]
    review = documents.document(city, cid, "review", 1, "zh")
    assert review["office"] == "shi 名称" and "复核" in review["paragraphs"][2]
    recheck = documents.document(city, cid, "recheck", 1, "en")
    assert recheck["title"] == "Re-review decision" and "复核维持。" in recheck["paragraphs"]
    # the same events make the same document wherever they are
    assert documents.document(town, cid, "decision", 1, "zh") == decision
    with pytest.raises(NotFound):
        documents.document(city, cid, "not_accepted", 1, "zh")


def test_a_document_is_what_its_event_recorded(town):
    """A correction after a decision does not rewrite the decision's document; one before
    it does, as the decision was about the corrected matter."""
    cid = reg(town, LIAISON)
    act(town, cid, "correct", LIAISON, summary="低保金五个月未发放", reason="听错")
    act(town, cid, "not_accept", reason="已通过行政复议解决")
    before = documents.document(town, cid, "not_accepted", 1, "zh")
    assert "低保金五个月未发放" in before["paragraphs"][0]
    assert "已通过行政复议解决" in before["paragraphs"][0]
    assert before["title"] == "不予受理告知书"
    act(town, cid, "note", LIAISON, text="已送达不予受理告知书")
    assert documents.document(town, cid, "not_accepted", 1, "zh") == before


def test_no_longer_accepted_names_itself(town):
    earlier = reg(town)
    repeat = reg(town, repeat_of=earlier)
    with pytest.raises(ValidationError) as err:
        act(town, earlier, "not_accept", reason="同一事实和理由", ground="no_longer")
    assert err.value.params["field"] == "ground"  # only a repeat petition
    act(town, repeat, "not_accept", reason="同一事实和理由，已复核终结", ground="不再受理")
    doc = documents.document(town, repeat, "not_accepted", 1, "zh")
    assert doc["title"] == "不再受理告知书" and "第三十六条" in doc["paragraphs"][1]
