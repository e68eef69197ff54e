"""信访件 vocabularies: the codes a case stores, the labels (zh first) people read.

Also the roles and tiers each kind of action belongs to, and ``code_of``,
which takes a code or either label (低保 / dibao / Minimum living allowance).
"""

from __future__ import annotations

from node import i18n
from node.errors import N_, ValidationError

STATES = {
    "registered": ("已登记", "Registered"),
    "accepted": ("已受理", "Accepted"),
    "in_progress": ("办理中", "In progress"),
    "replied": ("已答复", "Replied"),
    "review_requested": ("复查中", "Review requested"),
    "reviewed": ("已复查", "Reviewed"),
    "recheck_requested": ("复核中", "Re-review requested"),
    "concluded": ("已办结", "Concluded"),
    "terminated": ("已终结", "Terminated"),
    "not_accepted": ("不予受理", "Not accepted"),
    "referred_out": ("已转送", "Forwarded to the competent organ"),
    "merged": ("已合并", "Merged"),
}
OPEN = ("registered", "accepted", "in_progress")
ANSWERED = ("replied", "review_requested", "reviewed", "recheck_requested")
CLOSED = ("concluded", "terminated", "not_accepted", "referred_out", "merged")
CHANNELS = {
    "letter": ("来信", "Letter"), "visit": ("来访", "Visit"), "phone": ("来电", "Phone"),
    "online": ("网上", "Online"), "leader_day": ("领导接待日", "Leader reception day"),
    "field_visit": ("下访", "Field visit"), "screening": ("村级排查", "Village screening"),
    "assigned": ("上级交办", "Assigned from above"),
}
NATURES = {
    "suggestion": ("建议意见", "Suggestion"), "accusation": ("检举控告", "Report or accusation"),
    "request": ("申诉求决", "Appeal or request"),
}
CATEGORIES = {
    "youfu": ("优抚", "Veterans' benefits"), "dibao": ("低保", "Minimum living allowance"),
    "tekun": ("特困供养与临时救助", "Extreme poverty and temporary relief"),
    "elderly": ("养老服务", "Elderly care"), "children": ("儿童福利", "Child welfare"),
    "disability": ("残疾人福利", "Disability welfare"),
    "marriage": ("婚姻登记", "Marriage registration"), "funeral": ("殡葬", "Funeral services"),
    "placenames": ("区划地名", "Administrative divisions and place names"),
    "grassroots": ("基层政权与村务(选举)", "Village affairs and elections"),
    "social_org": ("社会组织", "Social organisations"), "charity": ("慈善", "Charity"),
    "other": ("其他", "Other"),
}
ORDER_STATES = {"issued": ("已下发", "Issued"), "acknowledged": ("已签收", "Acknowledged"),
                "feedback": ("已反馈", "Feedback given"), "closed": ("已办结", "Closed")}
DECISIONS = {"support": ("支持", "Supported"), "explain": ("解释说明", "Explained"),
             "reject": ("不予支持", "Not supported")}
RATINGS = {"satisfied": ("满意", "Satisfied"), "basic": ("基本满意", "Basically satisfied"),
           "dissatisfied": ("不满意", "Dissatisfied")}
# Art. 23/36: why a petition is not accepted; 不再受理: the same matter on the same facts
# and grounds after a re-review (复核) or other final procedure
NOT_ACCEPT_GROUNDS = {"not_accepted": ("不予受理", "Not accepted"),
                      "no_longer": ("不再受理", "No longer accepted (matter already concluded)")}
DELIVERY = {"in_person": ("当面送达", "In person"), "post": ("邮寄", "By post"),
            "phone": ("电话告知", "By phone"), "online": ("网上答复", "Online")}
# the kinds of deadline a case shows: due_kind (the holder's) and request_kind (the
# petitioner's right to ask for review or re-review)
DUE_KINDS = {  # what a deadline is for: a page labels each date with it
    "forward": ("登记转送期限", "Deadline to register and forward"),
    "accept": ("受理告知期限", "Deadline to decide on acceptance"),
    "settle": ("办结期限", "Deadline to settle"), "referral": ("交办期限", "Referral deadline"),
    "followup": ("回访期限", "Deadline for the follow-up visit"),
    "review": ("复查答复期限", "Deadline to answer the review"),
    "recheck": ("复核答复期限", "Deadline to answer the re-review"),
    "review_request": ("复查申请期限", "Deadline to ask for a review"),
    "recheck_request": ("复核申请期限", "Deadline to ask for a re-review"),
}
TIER_CODES = {"city": "S", "town": "Z", "area": "P", "village": "C"}  # 市 镇 片 村
MAX_REPRESENTATIVES = 5  # Art. 20: a group visit sends at most five representatives

# the free-text fields of case events, where personal data a liaison types is screened for
FREE_TEXT = frozenset({"summary", "request", "facts", "reason", "reply", "instruction",
                       "message", "text", "note", "feedback", "report", "answer"})
WORKERS = ("liaison", "handler", "leader")
OFFICE = ("handler", "leader")
LEADERS = ("leader",)
ALL_TIERS = ("city", "town", "area", "village")
DECIDING_TIERS = ("town", "city")  # 受理 and formal replies are for the 信访 offices


def code_of(vocabulary: dict, field_name: str, value, required: bool = True) -> str | None:
    """Accept a code or either label (低保 / dibao / Minimum living allowance)."""
    if value in (None, "") and not required:
        return None
    for code, labels in vocabulary.items():
        if value == code or value in labels:
            return code
    raise ValidationError(N_("%(field)s: unknown value %(value)s"), field=field_name,
                          value=value)


ACTION_LABELS = {
    "register": ("登记", "register"), "accept": ("受理", "accept"),
    "not_accept": ("不予受理", "not accept"), "settle": ("当场化解", "settle on the spot"),
    # the statute's words (信访工作条例 Art. 21-23): 转送 sends a matter to the organ competent
    # for it; 交办 is an organ's order to one below it, with a deadline and a report back;
    # giving a case to a handler inside an office is 分办, not 交办
    "assign": ("分办/包案", "assign"), "refer_out": ("转送", "forward to the competent organ"),
    "escalate": ("上报", "escalate"), "refer": ("交办", "refer down"),
    "sign": ("签收", "sign for"), "return": ("退回", "return"), "urge": ("催办", "urge"),
    "supervise": ("督办", "supervise"), "supervision_ack": ("签收督办单", "acknowledge order"),
    "urge_ack": ("签收催办", "acknowledge urge"),
    "supervision_feedback": ("督办反馈", "report on order"),
    "supervision_close": ("督办办结", "close order"), "extend": ("延期", "extend"),
    "reply": ("答复", "reply"), "followup": ("回访", "follow up"),
    "reopen": ("发回重办", "reopen"), "review_request": ("申请复查", "request review"),
    "review": ("复查答复", "answer review"), "recheck_request": ("申请复核", "request re-review"),
    "close": ("结案", "close"), "withdraw": ("撤回", "withdraw"), "merge": ("合并", "merge"),
    "archive": ("归档", "archive"), "note": ("备注", "add a note"), "correct": ("更正", "correct"),
    "report": ("当日报告", "report the same day"),
    # warnings
    "raise": ("上报预警", "raise"), "acknowledge": ("签收", "acknowledge"),
    "revoke": ("吊销", "revoke"),
    "handle": ("处置", "handle"), "defuse": ("化解", "defuse"), "occurred": ("已发生", "occurred"),
}


# Each field in people's words (messages show "%(field)s" with them, node/i18n.py)
FIELD_WORDS = {
    "reason": N_("Reason"), "reply": N_("Reply"), "instruction": N_("Instruction"),
    "message": N_("Message"), "text": N_("Note"), "note": N_("Note"),
    "feedback": N_("Feedback"), "report": N_("Closing report"), "answer": N_("Re-review answer"),
    "summary": N_("Summary"), "request": N_("Request"), "facts": N_("Facts"),
    "decision": N_("Decision"), "rating": N_("Rating"), "delivery": N_("Delivery"),
    "delivered_on": N_("Delivered on"), "deadline": N_("Deadline"), "days": N_("Days"),
    "to": N_("To unit"), "order_id": N_("Supervision order"), "assignee": N_("Assignee"),
    "lead_leader": N_("Lead leader (包案领导)"), "approver": N_("Approved by"),
    "department": N_("Department"), "into": N_("Merge into case number"),
    "signers": N_("Signers (comma between names)"), "category": N_("Category"),
    "nature": N_("Nature"), "channel": N_("Channel"), "people_count": N_("People involved"),
    "name": N_("Name"), "id_number": N_("ID number"), "phone": N_("Phone"),
    "address": N_("Address"), "petitioners": N_("Petitioners"),
    "petitioners[]": N_("%(field)s of petitioner %(n)s"),
    "representative": N_("Representative"), "repeat_of": N_("Repeat of case number"),
    "first_time": N_("First-time petition"), "skip_level": N_("Skip-level petition"),
    "accused_unit": N_("Accused unit"), "query_code": N_("Query code"),
    "notice": N_("Petitioner told of it by (告知方式)"), "ground": N_("Ground"),
    "told": N_("The petitioner was told of the right to ask for a review (复查) within 30 "
               "days of the reply's delivery"),
    "urge": N_("Urge"), "action": N_("Action"),
}

i18n.add_fields(FIELD_WORDS)
i18n.add_labels("state", STATES)
i18n.add_labels("action", ACTION_LABELS)
i18n.add_labels("order_state", ORDER_STATES)
i18n.add_labels("due_kind", DUE_KINDS)
for _kind, _vocabulary in (("category", CATEGORIES), ("channel", CHANNELS), ("nature", NATURES),
                           ("decision", DECISIONS), ("rating", RATINGS),
                           ("delivery", DELIVERY), ("notice", DELIVERY),
                           ("ground", NOT_ACCEPT_GROUNDS)):
    i18n.add_labels(_kind, _vocabulary)
