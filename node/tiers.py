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

# The roles that exist at each tier (users.ROLES names them). Every level of the network
# has its information officers (信息员, the four-level information network's liaisons) and
# leaders (a village's committee, 村两委; an area's 片长; the offices' leaders); only the
# area, the town and the city have petition offices with handlers (办理人). An event whose
# role does not exist at its origin's tier is refused wherever it arrives: a village
# cannot claim to be an office.
TIER_ROLES = {"village": ("liaison", "leader", "admin"),
              "area": ("liaison", "handler", "leader", "admin"),
              "town": ("liaison", "handler", "leader", "admin"),
              "city": ("liaison", "handler", "leader", "admin")}
