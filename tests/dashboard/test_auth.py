"""Users file, password hashing and `parktwin users add`."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dashboard.auth import UserStore, add_user, hash_password, verify_password
from twin.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_hash_is_salted_scrypt_that_a_second_implementation_verifies():
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second  # a fresh salt per hash
    scheme, n, r, p, salt_hex, digest_hex = first.split("$")
    assert scheme == "scrypt" and len(bytes.fromhex(salt_hex)) == 16
    # recompute with the standard library directly from the stored parameters
    again = hashlib.scrypt(b"correct horse", salt=bytes.fromhex(salt_hex), n=int(n), r=int(r), p=int(p))
    assert again.hex() == digest_hex
    assert verify_password("correct horse", first)
    assert not verify_password("Correct horse", first)
    assert not verify_password("correct horse", "scrypt$broken")


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
    command = [sys.executable, "-m", "twin.cli", "users", "add", str(path), "olga", "--role", "operator"]
    done = subprocess.run(command, input="s3cret\ns3cret\n", capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert UserStore.load(path).sign_in("olga", "s3cret") is not None
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
