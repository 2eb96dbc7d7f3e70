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


def classroom_files(folder, acl: str = ACL) -> str:
    """Write the password file and ``acl`` into ``folder``; the mosquitto.conf lines that use
    them (the same for mosquitto and mqttsim broker)."""
    from mqttsim.net.passwd import set_password

    passwd, acl_file = folder / "passwd", folder / "acl"
    for number, (user, password) in enumerate(PASSWORDS.items()):
        set_password(passwd, user, password, create=number == 0)
    acl_file.write_text(acl)
    return f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl_file}\n"
