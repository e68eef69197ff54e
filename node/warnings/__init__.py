"""预警 early warnings of group petitions: their own record, risk and status flow.

Status: raised 已上报 -> acknowledged 已签收 -> handling 处置中 -> defused 已化解
| escalated 已升级 | occurred 已发生. The risk level (一般 / 较大 / 重大) is
computed from a formula kept in config, so a node's rebuild re-rates old
warnings after the formula changes.

The same-day chain (当日链): every node above the origin that a warning
reaches records, as an automatic event it signs, that it received it
(``warning.received``, actor ``system``); a person there acknowledges it
(``warning.acknowledged``); a node that has not acknowledged it within
WARNING_ACK_HOURS of receiving it raises the alarm (``warning.alarmed``),
which the routing policy carries to its parent, the next level up. All three
are events, so every node on the path folds the same chain and a rebuild
gives it back. ``chain`` reads it for the pages and the API.

The package: ``risk`` (vocabularies and the risk formula), ``rules`` (the rule
of every action, the fold and the rows), ``commands`` (what the CLI and the
pages call) and ``chain`` (the same-day chain).
"""

from node.warnings.chain import (
    alarms,
    alarms_below,
    chain,
    raise_alarms,
    receipts,
    record_receipts,
    waiting_here,
)
from node.warnings.commands import acks, act, allowed_actions, get, listing, raise_warning
from node.warnings.risk import (
    DEFAULT_RISK,
    DEFAULT_SENSITIVE,
    DESTINATIONS,
    FINAL,
    LEVELS,
    SOURCES,
    STATUSES,
    risk,
    sensitive_overlap,
    validate_risk,
    validate_sensitive_dates,
)
from node.warnings.rules import (
    ALARMED,
    AUTO,
    AUTO_LABELS,
    BY_TYPE,
    COLUMNS,
    OPEN,
    RECEIVED,
    RULES,
    FoldContext,
    Folded,
    Rule,
    clear,
    fold,
    validate_body,
    write,
    write_many,
)

__all__ = [
    "ALARMED", "AUTO", "AUTO_LABELS", "BY_TYPE", "COLUMNS", "DEFAULT_RISK", "DEFAULT_SENSITIVE",
    "DESTINATIONS", "FINAL", "LEVELS", "OPEN", "RECEIVED", "RULES", "SOURCES", "STATUSES",
    "FoldContext", "Folded", "Rule", "act", "acks", "allowed_actions", "alarms", "alarms_below",
    "chain", "clear",
    "fold", "get", "listing", "raise_alarms", "raise_warning", "receipts", "record_receipts",
    "risk", "sensitive_overlap", "validate_body", "validate_risk", "validate_sensitive_dates",
    "waiting_here", "write", "write_many"]
