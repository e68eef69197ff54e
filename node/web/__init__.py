"""The node's web app: role pages and a JSON API over the same domain functions.

``app.make_app`` builds it; ``auth`` logs people in; ``access`` decides what a
user may see; ``ops`` does what pages and API both do; one blueprint module
per role (``liaison``, ``office``, ``city``, ``network``, ``accounts``) and
``api``; ``forms`` maps fields to inputs.
"""
