"""Users file, password hashing and `parktwin users add`."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dashboard.auth import UserStore, add_user, hash_password, verify_password
from twin.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_hash_is_werkzeug_scrypt_that_the_standard_library_verifies():
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second  # a fresh salt per hash
    method, salt, digest_hex = first.split("$")
    assert method == "scrypt:32768:8:1" and len(salt) == 16
    # recompute with the standard library directly from the stored parameters (werkzeug salts with the text)
    again = hashlib.scrypt(b"correct horse", salt=salt.encode(), n=2**15, r=8, p=1, maxmem=64 * 2**20)
    assert again.hex() == digest_hex
    assert verify_password("correct horse", first)
    assert not verify_password("Correct horse", first)
    assert not verify_password("correct horse", "scrypt$broken")


def legacy_hash(password: str, n: int = 2**14, r: int = 8, p: int = 1) -> str:
    """A hash in the format users files held before werkzeug's, made with the standard library."""
    salt = bytes(range(16))
    real = (n, r, p) == (2**14, 8, 1)  # the costs of old files; others are only checked, never computed
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p) if real else b"\0" * 64
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def test_users_files_with_the_earlier_scrypt_format_still_sign_in(tmp_path):
    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump({"users": {"olga": {"role": "operator", "password_hash": legacy_hash("s3cret")}}}))
    store = UserStore.load(path)
    assert store.sign_in("olga", "s3cret") == store.get("olga")
    assert store.sign_in("olga", "s3cret!") is None


@pytest.mark.parametrize("stored, reason", [
    (legacy_hash("x", n=99_999_999_999), "scrypt N=99,999,999,999 must be a power of two from 2 to 2**20"),
    (legacy_hash("x", n=2**21), "scrypt N=2,097,152 must be a power of two"),
    (legacy_hash("x", n=3), "scrypt N=3 must be a power of two"),
    (legacy_hash("x", r=17), "scrypt r=17 must be from 1 to 16"),
    (legacy_hash("x", p=5), "scrypt p=5 must be from 1 to 4"),
    ("scrypt:99999999999:8:1$abcdefgh$00ff", "scrypt N=99,999,999,999 must be a power of two"),
    ("pbkdf2:sha256:900000000$abcdefgh$00ff", "pbkdf2 iterations=900,000,000 must be from 1 to 5,000,000"),
    ("pbkdf2:md5:1000$abcdefgh$00ff", "pbkdf2 digest 'md5' must be one of sha256, sha512"),
    ("scrypt$" + "9" * 100_000 + "$8$1$00$00", "not a password hash"),
])
def test_a_stored_hash_of_unbounded_cost_is_refused_at_load_naming_the_user(tmp_path, stored, reason):
    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump({"users": {"mallory": {"role": "admin", "password_hash": stored}}}, width=10**6))
    with pytest.raises(ConfigError) as refused:
        UserStore.load(path)
    assert "users.mallory.password_hash" in str(refused.value) and reason in str(refused.value)


@pytest.mark.parametrize("name, reason", [
    ("a:b", "user name 'a:b' must not contain ':' (HTTP Basic credentials cannot carry it)"),
    ("ann\x07", "user name 'ann\\x07' must not contain spaces or control characters"),
])
def test_a_user_name_http_basic_cannot_carry_is_refused_at_load_and_by_users_add(tmp_path, name, reason):
    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump({"users": {name: {"role": "viewer", "password_hash": hash_password("pw")}}}))
    with pytest.raises(ConfigError) as refused:
        UserStore.load(path)
    assert reason in str(refused.value) and str(path) in str(refused.value)
    with pytest.raises(ValueError, match=re.escape(reason)):
        add_user(tmp_path / "other.yaml", name, "viewer", "pw")


def test_users_file_round_trip_and_role_change(tmp_path):
    path = tmp_path / "users.yaml"
    assert add_user(path, "ann", "trader", "pw-1") is True
    assert add_user(path, "ann", "admin", "pw-2") is False
    assert "pw-2" not in path.read_text()
    store = UserStore.load(path)
    assert store.sign_in("ann", "pw-1") is None
    user = store.sign_in("ann", "pw-2")
    assert user is not None and user.role == "admin" and user.may("approve_plan") and user.may("write_point")
    with pytest.raises(ValueError, match="unknown role"):
        add_user(path, "bob", "boss", "pw")


def test_an_invalid_users_file_is_refused_with_line_and_field(tmp_path):
    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump({"users": {"ann": {"role": "operator", "password_hash": "plain"}}}))
    path.write_text(path.read_text() + "  bob:\n    role: pilot\n    password_hash: " + hash_password("x") + "\n")
    with pytest.raises(ConfigError) as error:
        UserStore.load(path)
    text = str(error.value)
    assert "users.ann.password_hash" in text and "users.bob.role" in text and "line" in text


def test_users_add_command_prompts_for_the_password_and_exits_2_on_a_bad_role(tmp_path):
    path = tmp_path / "users.yaml"
    command = [sys.executable, "-m", "parktwin", "users", "add", str(path), "olga", "--role", "operator"]
    done = subprocess.run(command, input="s3cret\ns3cret\n", capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert UserStore.load(path).sign_in("olga", "s3cret") is not None
    assert yaml.safe_load(path.read_text())["users"]["olga"]["password_hash"].startswith("scrypt:32768:8:1$")
    colon = subprocess.run([*command[:-3], "a:b", "--role", "viewer", "--password", "x"], capture_output=True,
                           text=True, cwd=ROOT, timeout=60)
    assert colon.returncode == 2 and "must not contain ':'" in colon.stderr and "Traceback" not in colon.stderr
    bad = subprocess.run([*command[:-1], "boss", "--password", "x"], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    assert bad.returncode == 2 and "unknown role 'boss'" in bad.stderr and "Traceback" not in bad.stderr


def test_notification_subscriptions_live_in_the_users_file_and_survive_a_password_change(tmp_path):
    path = tmp_path / "users.yaml"
    add_user(path, "olga", "operator", "pw-1")
    add_user(path, "vic", "viewer", "pw-1")
    written = yaml.safe_load(path.read_text())
    written["users"]["olga"]["notify"] = {"email": "olga@park.test", "webhook": "http://127.0.0.1:9/hook",
                                          "priorities": ["critical"], "assets": ["battery"]}
    written["notifications"] = {"smtp": {"host": "127.0.0.1", "port": 2525, "sender": "parktwin@park.test"},
                                "max_per_hour": 5}
    path.write_text(yaml.safe_dump(written))
    add_user(path, "olga", "operator", "pw-2")  # a new password keeps her subscription
    store = UserStore.load(path)
    (name, olga), = store.subscriptions().items()
    assert (name, olga.email, olga.webhook, olga.priorities, olga.assets) == (
        "olga", "olga@park.test", "http://127.0.0.1:9/hook", ["critical"], ["battery"])
    assert (store.notification_settings.smtp.port, store.notification_settings.max_per_hour) == (2525, 5)
    assert store.sign_in("olga", "pw-2") is not None


@pytest.mark.parametrize("change, reason", [
    (lambda f: f.pop("notifications"), "notifications.smtp is missing: user(s) olga subscribe by e-mail"),
    (lambda f: f["users"]["olga"]["notify"].update(priorities=["low"]),
     "users.olga.notify.priorities[0]: Input should be 'high' or 'critical'"),
    (lambda f: f["users"]["olga"]["notify"].update(webhook="ftp://example"), "users.olga.notify.webhook"),
])
def test_a_bad_subscription_is_refused_naming_the_field(tmp_path, change, reason):
    path = tmp_path / "users.yaml"
    add_user(path, "olga", "operator", "pw-1")
    written = yaml.safe_load(path.read_text())
    written["users"]["olga"]["notify"] = {"email": "olga@park.test"}
    written["notifications"] = {"smtp": {"host": "127.0.0.1", "sender": "parktwin@park.test"}}
    change(written)
    path.write_text(yaml.safe_dump(written))
    with pytest.raises(ConfigError) as refused:
        UserStore.load(path)
    assert reason in str(refused.value) and str(path) in str(refused.value)
