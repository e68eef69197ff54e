"""The four tiers of the network and how they stand to each other. Pure.

city 市 > town 镇 > area 片 > village 村. A rank orders them (village 0 ..
city 3); ``CHILD_TIERS`` says which tier may enroll under which (a town
may have areas or, where it has none, villages directly).
"""

from __future__ import annotations

TIERS = ("city", "town", "area", "village")
TIER_RANK = {tier: rank for rank, tier in enumerate(reversed(TIERS))}  # village 0 .. city 3
CHILD_TIERS = {"city": ("town",), "town": ("area", "village"), "area": ("village",),
               "village": ()}
TIER_LABELS = {"city": ("市", "city"), "town": ("镇", "town"), "area": ("片", "area"),
               "village": ("村", "village")}
