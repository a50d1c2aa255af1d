"""training.people: keys and person ids, the names people give, who sees which runs, who may act
on them, and the teacher's password (issue 13). The jobs API's checks are in test_jobs; the
pages' in test_app_people."""
from __future__ import annotations

import hashlib

import pytest

from training import people
from training.people import People, Person, can_see, refusal, share_refusal

ADA, BEN = Person("a" * 32, "Ada"), Person("b" * 32, "Ben")
TEACHER = Person("c" * 32, "Ms Lee", teacher=True)


def test_a_key_is_random_and_its_person_id_a_one_way_hash_of_it():
    keys = {people.new_key() for _ in range(200)}
    assert len(keys) == 200 and all(people.is_key(key) and len(key) == 32 for key in keys)
    key = sorted(keys)[0]
    expected = hashlib.sha256(f"glassbox-person:{key}".encode()).hexdigest()[:32]
    assert people.person_id_of(key) == expected and key not in expected  # the key is not in the id
    assert len({people.person_id_of(k) for k in keys}) == 200
    for not_a_key in ("", "short", "a" * 19, "has space" + "x" * 20, "../../etc/passwd" + "x" * 10, None, 42):
        assert not people.is_key(not_a_key)
        with pytest.raises(ValueError, match="not a Glassbox key"):
            people.person_id_of(not_a_key)


@pytest.mark.parametrize("typed, kept", [("Ada", "Ada"), ("  Ada   Lovelace ", "Ada Lovelace"),
                                         ("<b>*Zoë*</b> & [x](y)", "<b>*Zoë*</b> & [x](y)"), ("李雷", "李雷")])
def test_a_name_is_kept_as_typed_with_its_spaces_tidied(typed, kept, tmp_path):
    person_id = people.person_id_of(people.new_key())
    assert People(tmp_path).register(person_id, typed) == Person(person_id, kept)
    assert People(tmp_path).name_of(person_id) == kept  # another process (a reload) finds it
    assert (tmp_path / "people" / f"{person_id}.json").is_file()


@pytest.mark.parametrize("typed, words", [("", "type your name"), ("   ", "type your name"),
                                          ("x" * 41, "41 characters long; use at most 40"),
                                          ("Ada\x00", "control characters"), ("A\u202eB", "control characters")])
def test_a_name_that_will_not_do_is_refused_in_words(typed, words, tmp_path):
    with pytest.raises(ValueError, match=words):
        People(tmp_path).register(people.person_id_of(people.new_key()), typed)
    assert People(tmp_path).names() == {}


def test_two_people_cannot_take_the_same_name_but_one_may_give_theirs_again(tmp_path):
    registry = People(tmp_path)
    ada = registry.register(ADA.person_id, "Ada")
    for same in ("Ada", " ada ", "ADA"):
        with pytest.raises(ValueError, match="someone here already goes by the name 'Ada'; add an initial"):
            registry.register(BEN.person_id, same)
    assert registry.register(ADA.person_id, "ada") == Person(ADA.person_id, "ada")  # her own name, again
    assert registry.register(BEN.person_id, "Ada B.") == Person(BEN.person_id, "Ada B.")
    assert registry.names() == {ADA.person_id: "ada", BEN.person_id: "Ada B."} and ada.person_id == ADA.person_id


def test_unknown_ids_and_damaged_files_have_no_name(tmp_path):
    registry = People(tmp_path)
    assert registry.name_of(ADA.person_id) is None and registry.names() == {}
    for bad_id in ("../x", "A" * 32, "", None):
        assert registry.name_of(bad_id) is None
        with pytest.raises(ValueError):
            registry.register(bad_id, "Eve")
    (tmp_path / "people").mkdir()
    for content in ("not json", "[1]", '{"name": ""}', '{"name": 7}'):
        (tmp_path / "people" / f"{ADA.person_id}.json").write_text(content)
        assert registry.name_of(ADA.person_id) is None and registry.names() == {}


@pytest.mark.parametrize("who, own, others, shared, nobodys", [
    (None, True, True, True, True),  # single-user mode sees everything
    (TEACHER, True, True, True, True),
    (ADA, True, False, True, False),  # a student: her own runs and the shared ones
    (Person("", ""), False, False, True, False),  # in a class, before giving a name
])
def test_who_sees_which_runs(who, own, others, shared, nobodys):
    assert can_see(who, ADA.person_id, False) is own
    assert can_see(who, BEN.person_id, False) is others
    assert can_see(who, BEN.person_id, True) is shared
    assert can_see(who, None, False) is nobodys


def test_who_may_act_on_a_run_and_why_not_in_words():
    for action in ("stop", "resume", "delete"):
        assert refusal(ADA, ADA.person_id, "Ada", action) is None
        assert refusal(TEACHER, ADA.person_id, "Ada", action) is None
        assert refusal(None, ADA.person_id, "Ada", action) is None  # single-user mode
        assert refusal(None, None, None, action) is None
        assert refusal(BEN, ADA.person_id, "Ada", action) == (
            f"you cannot {action} this run: it is Ada's run, and only its owner or the teacher can {action} it")
    # a student named like the owner is not the owner: the id counts, never the name
    assert refusal(Person("d" * 32, "Ada"), ADA.person_id, "Ada", "stop") is not None
    assert "it is nobody's run (it was made before the class was set up" in refusal(BEN, None, None, "delete")
    assert "it is someone else's run" in refusal(BEN, ADA.person_id, None, "stop")
    assert share_refusal(TEACHER) is None and share_refusal(None) is None
    assert share_refusal(ADA) == "only the teacher can share a run with the class"


def test_the_teachers_password_comes_from_the_environment_and_is_compared_exactly(monkeypatch):
    monkeypatch.delenv(people.PASSWORD_VARIABLE, raising=False)
    assert people.teacher_password() is None
    monkeypatch.setenv(people.PASSWORD_VARIABLE, "")
    assert people.teacher_password() is None  # set but empty: no class, as unset
    monkeypatch.setenv(people.PASSWORD_VARIABLE, "ré sumé-42")
    assert people.teacher_password() == "ré sumé-42"
    assert people.password_matches("ré sumé-42", "ré sumé-42")
    for wrong in ("", "ré sumé-4", "ré sumé-42 ", "RÉ SUMÉ-42", "re sume-42"):
        assert not people.password_matches(wrong, "ré sumé-42")
