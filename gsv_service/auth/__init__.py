"""API keys, the checks every request passes (trusted hosts, CORS, key and scope, cross-site
rules, stream limits), task ownership, and the refusal to bind openly without a key.

README "Security: keys, bind, hosts" says what users see; each module holds one concept:
keys.py (the key table), principal.py (who is calling), middleware.py (the per-request check),
csrf.py (cross-site rules), hosts.py (trusted hosts), access.py (ownership and per-key limits),
session.py (the page's cookie), bind.py (start-up refusal), cli.py (`python -m gsv_service keys`).
"""
