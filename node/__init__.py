"""siji (四级网): one node of the village-area-town-city petition reporting network."""

from __future__ import annotations

__version__ = "0.1.0"


def create_app(node_dir=None, config=None, clock=None):
    """The Flask app of the node in ``node_dir`` (or $SIJI_DIR); ``config`` overrides (tests)."""
    # loaded here, not at the top: importing any module of the package (the signature
    # helper processes import node.verifier) must not load Flask and every layer
    from node.web.app import make_app
    return make_app(node_dir, config, clock)
