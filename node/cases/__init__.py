"""信访件 petitions: one package, read in this order.

- ``vocab``: the codes stored and the labels shown (states, channels, categories...);
- ``fields``: the clean function of every action, which gives a body its normal form;
- ``rules``: the rule of every action, one table: decision or path action, roles,
  tiers, states, and the applier that changes the case in the fold;
- ``fold``: a case's rows from its events, in causal order (see node.log);
- ``commands``: what the CLI, the pages and the API call;
- ``recount``: the deadlines folded again when the holiday calendar changes.

A case's rows are a deterministic fold of its events. The same rule checks a
local command before it is signed and a remote event when it arrives, so
every node agrees. This module gives the package's names in one place.
"""

from node.cases.commands import (
    act,
    allowed_actions,
    fitting_actions,
    get,
    listing,
    new_case_id,
    new_query_code,
    order_overdue,
    orders,
    orders_by,
    others_may,
    petitioners,
    register,
    suggested,
    waiting_here,
)
from node.cases.fold import CASE_COLUMNS, ORDER_COLUMNS, clear, fold, write, write_many
from node.cases.recount import calendar_gaps, describe_change, recount
from node.cases.recount import changed as calendar_changed
from node.cases.recount import changes_of as deadline_changes
from node.cases.rules import BY_TYPE, EVENT_NAMES, RULES, FoldContext, Folded, Rule, validate_body
from node.cases.vocab import (
    ACTION_LABELS,
    ALL_TIERS,
    ANSWERED,
    CATEGORIES,
    CHANNELS,
    CLOSED,
    DECIDING_TIERS,
    DECISIONS,
    DELIVERY,
    DUE_KINDS,
    LEADERS,
    MAX_REPRESENTATIVES,
    NATURES,
    NOT_ACCEPT_GROUNDS,
    OFFICE,
    OPEN,
    ORDER_STATES,
    RATINGS,
    STATES,
    TIER_CODES,
    WORKERS,
    code_of,
)

__all__ = [
    "ACTION_LABELS", "ALL_TIERS", "ANSWERED", "BY_TYPE", "CASE_COLUMNS", "CATEGORIES",
    "CHANNELS", "CLOSED", "DECIDING_TIERS", "DECISIONS", "DELIVERY", "EVENT_NAMES", "LEADERS",
    "MAX_REPRESENTATIVES", "NATURES", "OFFICE", "OPEN", "ORDER_COLUMNS", "ORDER_STATES",
    "RATINGS", "RULES", "STATES", "TIER_CODES", "WORKERS", "FoldContext", "Folded", "Rule",
    "waiting_here", "act", "allowed_actions", "fitting_actions", "others_may", "suggested",
    "calendar_changed", "clear", "deadline_changes", "recount", "code_of", "describe_change",
    "DUE_KINDS", "calendar_gaps", "NOT_ACCEPT_GROUNDS", "fold", "get", "listing", "new_case_id",
    "new_query_code", "order_overdue", "orders", "orders_by", "petitioners", "register",
    "validate_body", "write", "write_many"]
