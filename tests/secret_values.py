"""Passwords made of every character a URL reserves, and a check that no fragment of them leaks.

Each password starts with letters, so the fragment urllib quoted (the text before the first
delimiter) is long enough to be recognised.
"""

from __future__ import annotations

from urllib.parse import quote

import psycopg
from psycopg import sql

from sage_ops.postgres import PgTarget

RESERVED = ":/?#[]@!$&'()*+,;="
# Every reserved character, `%` (not followed by hex digits, so a raw paste is unambiguous),
# a space and non-ASCII letters; the second ends in fullwidth forms that NFKC maps to `#/@?`.
PASSWORDS = [
    "Qz8Wv:Xw/Yv?Ku#Jt[Hs]Gr@Fp!Eo$Dn&Cm'Bl(Ak)Zj*Yi+Xh,Wg;Vf=Ue%Td Sc€Rbé你Mo",
    "Lm4Rt=Ns;Ob,Pc+Qd*Re)Sf(Tg'Uh&Vi$Wj!Xk@Yl]Zm[An#Bo?Cp/Dq:Er%Gs Ht你"
    "Nk\uff17Pw\uff03Mx\uff0fLv\uff20Qs\uff1f",  # fullwidth 7 # / @ ?
]
# One password per reserved character, that character first and twice (for the cheap tests).
ONE_EACH = [f"Sg7Hb{c}Kp4{c}Wz9" for c in RESERVED + "% "]
FORMS = ("encoded", "raw")
LOGIN = "sage_tricky"


def in_url(password: str, form: str) -> str:
    """The password as written in a URL: percent-encoded, or pasted as it is."""
    return quote(password, safe="") if form == "encoded" else password


def fragments(password: str, size: int = 4) -> set[str]:
    """Every `size`-character piece of the password, raw and percent-encoded."""
    return {
        text[i : i + size]
        for text in (password, quote(password, safe=""), quote(password))
        for i in range(len(text) - size + 1)
    }


def assert_no_fragment(text: str, password: str) -> None:
    leaked = sorted(f for f in fragments(password) if f in text)
    assert not leaked, f"password fragments {leaked} in: {text[:2000]}"


def set_login(server: PgTarget, password: str) -> None:
    """Make LOGIN a superuser with `password` on `server` (a password-checking server)."""
    with psycopg.connect(**server.conninfo(), autocommit=True) as conn:  # type: ignore[arg-type]
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (LOGIN,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            sql.SQL(verb + " ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                sql.Identifier(LOGIN), sql.Literal(password)
            )
        )


def url(server: PgTarget, password: str, form: str, dbname: str = "postgres") -> str:
    """A postgresql:// URL logging in as LOGIN with `password` written in `form`."""
    set_login(server, password)
    return f"postgresql://{LOGIN}:{in_url(password, form)}@{server.host}:{server.port}/{dbname}"
