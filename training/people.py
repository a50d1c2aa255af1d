"""Who is who when a class shares one server: a person, the teacher, and what each may see and do.

    person = Person(person_id_of(key), "Ada")          # key: a random string only Ada's browser holds
    refusal(person, run.owner, run.owner_name, "stop")  # None if Ada may stop the run, else why not
    can_see(person, run.owner, run.shared)              # her own runs and the ones the teacher shared

There are no accounts. A visitor's browser holds a random ``key`` (``new_key``; the app keeps it in
the page's address). Their ``person_id`` is a one-way hash of it, so it can be written in a run's
record (``RunRecord.owner``) and shown to nobody without giving the key away; the key itself is
never stored. The name a visitor typed is kept in ``People`` (one small file per person under
$GLASSBOX_HOME/people), so that a reload finds it again; it is only ever shown. Two people cannot
take the same name, so the teacher's list of runs never shows two "Sam"s, and typing someone's
name gives nobody their runs: what counts is the key.

``by=None`` (and ``owner=None`` on a run) is single-user mode, as before classes existed: no
teacher password is set, or the command line trains. Then everything is allowed. A run whose
owner is None belongs to nobody: in a class only the teacher may act on it.

The teacher is a person who signed in with the password the person running the server set
(``GLASSBOX_TEACHER_PASSWORD``; the app also reads Streamlit's secrets.toml). It is compared in
constant time (``password_matches``) and never logged or stored.

Only the standard library and the run store's root: nothing here trains or draws.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from models.files import write_atomically
from training.store import default_root

PASSWORD_VARIABLE = "GLASSBOX_TEACHER_PASSWORD"
KEY = re.compile(r"^[A-Za-z0-9_-]{20,100}$")  # what new_key makes (URL-safe base64), with room to spare
PERSON_ID = re.compile(r"^[0-9a-f]{32}$")
NAME_MAX = 40  # characters of a display name


@dataclass(frozen=True)
class Person:
    """Someone using the app: the id their browser's key gives, the name they typed, and whether
    they signed in as the teacher."""

    person_id: str
    name: str
    teacher: bool = False


# ---- settings ---------------------------------------------------------------------------------
def teacher_password() -> str | None:
    """The teacher's password from the environment; None (single-user mode) when it is unset or empty."""
    return os.environ.get(PASSWORD_VARIABLE) or None


def password_matches(given: str, expected: str) -> bool:
    """Whether ``given`` is the password, compared in constant time (no timing tells how close it was)."""
    return hmac.compare_digest(str(given).encode("utf-8"), str(expected).encode("utf-8"))


# ---- identity ---------------------------------------------------------------------------------
def new_key() -> str:
    """A fresh random key for a new visitor's browser (192 bits)."""
    return secrets.token_urlsafe(24)


def is_key(text) -> bool:
    return isinstance(text, str) and bool(KEY.match(text))


def person_id_of(key: str) -> str:
    """The person id a browser's key stands for: a one-way hash, so a run's record that names its
    owner does not give the key away. ValueError if ``key`` is not a key."""
    if not is_key(key):
        raise ValueError("that is not a Glassbox key")
    return hashlib.sha256(f"glassbox-person:{key}".encode()).hexdigest()[:32]


def clean_name(text) -> str:
    """A display name as typed, with spaces tidied; ValueError (in words) for one that will not do."""
    name = " ".join(str(text or "").split())
    if not name:
        raise ValueError("type your name first")
    if len(name) > NAME_MAX:
        raise ValueError(f"that name is {len(name)} characters long; use at most {NAME_MAX}")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise ValueError("a name cannot contain control characters")
    return name


def same_name(a: str, b: str) -> bool:
    return clean_name(a).casefold() == clean_name(b).casefold()


class People:
    """The names people gave, by person id: $GLASSBOX_HOME/people/<person_id>.json."""

    def __init__(self, root: str | Path | None = None):
        self.folder = (Path(root).expanduser() if root is not None else default_root()) / "people"

    def name_of(self, person_id: str) -> str | None:
        """The name ``person_id`` gave, or None if they never gave one here (or the file is damaged)."""
        if not isinstance(person_id, str) or not PERSON_ID.match(person_id):
            return None
        try:
            name = json.loads((self.folder / f"{person_id}.json").read_text(encoding="utf-8")).get("name")
            return clean_name(name) if isinstance(name, str) else None
        except (OSError, ValueError, AttributeError):
            return None

    def names(self) -> dict[str, str]:
        """Every registered person id and name."""
        found = {}
        for path in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else ():
            name = self.name_of(path.stem)
            if name is not None:
                found[path.stem] = name
        return found

    def register(self, person_id: str, name: str) -> Person:
        """Keep ``name`` for ``person_id``; ValueError (in words) if the name will not do or someone
        else here already goes by it."""
        if not isinstance(person_id, str) or not PERSON_ID.match(person_id):
            raise ValueError("that is not a person id")
        name = clean_name(name)
        for other_id, other_name in self.names().items():
            if other_id != person_id and same_name(other_name, name):
                raise ValueError(f"someone here already goes by the name '{other_name}'; add an initial or "
                                 "a surname so the teacher can tell you apart")
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomically(self.folder / f"{person_id}.json", json.dumps({"name": name}).encode("utf-8"))
        return Person(person_id, name)


# ---- who may see and do what ------------------------------------------------------------------
def can_see(person: Person | None, owner: str | None, shared: bool) -> bool:
    """Whether ``person`` sees a run: everyone in single-user mode, the teacher every run, and a
    student their own runs and the ones the teacher shared."""
    if person is None or person.teacher:
        return True
    return shared or (owner is not None and owner == person.person_id)


def refusal(by: Person | None, owner: str | None, owner_name: str | None, action: str) -> str | None:
    """None if ``by`` may ``action`` ("stop", "resume", "delete") a run that ``owner`` owns; else
    why not, in plain words."""
    if by is None or by.teacher or (owner is not None and owner == by.person_id):
        return None
    if owner is None and owner_name:  # a ready-trained demo's run (training.demo_runs): "Glassbox's run"
        whose = f"{owner_name}'s run"
    elif owner is None:
        whose = "nobody's run (it was made before the class was set up, or from the command line)"
    elif owner_name:
        whose = f"{owner_name}'s run"
    else:
        whose = "someone else's run"
    return f"you cannot {action} this run: it is {whose}, and only its owner or the teacher can {action} it"


def share_refusal(by: Person | None) -> str | None:
    """None if ``by`` may share runs with the class (the teacher, or anyone in single-user mode)."""
    if by is None or by.teacher:
        return None
    return "only the teacher can share a run with the class"
