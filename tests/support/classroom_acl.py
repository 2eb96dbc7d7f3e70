"""The set-up of issue 13's ACL findings, shared by the engine and the real-server tests:
three users and mosquitto's acl_file syntax, as a teacher would write them."""

ACL = """\
user admin
topic readwrite #
user alice
topic readwrite alice/#
topic read public/#
topic deny public/secret/#
user bob
topic readwrite bob/#
"""
PASSWORDS = {"admin": "admin-pw", "alice": "alice-pw", "bob": "bob-pw"}
