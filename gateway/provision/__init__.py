"""`shopwatt provision`: the site broker's users, ACL and TLS, and each sensor's config.json.

broker.py and sensor.py are the two operations; auth.py keeps the password file and ACL
in step with state.py's record; files.py writes everything atomically and privately.
docs/security.md is the user's guide.
"""
