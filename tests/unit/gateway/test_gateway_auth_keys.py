"""Tokens and tenants, artifact keys and their tenant prefix, and the gateway's settings."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from gateway.artifacts.keys import tenant_key, user_key, validate_prefix, validate_user_key
from gateway.auth import TokenFileError, TokenRegistry, Unauthenticated, parse_token_file, token_digest
from gateway.settings import load_gateway_settings
from services.common.errors import InvalidArgument
from services.common.settings import SettingsError


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# ------------------------------------------------------------------ tokens

def test_tokens_are_known_by_digest_only_and_map_to_their_tenant():
    registry = TokenRegistry({"lab-a": [digest("a-1"), digest("a-2")], "lab-b": [digest("b-1")]})
    assert [registry.tenant_for(t) for t in ("a-1", "a-2", "b-1")] == ["lab-a", "lab-a", "lab-b"]
    assert registry.tenant_for("a-3") is None and registry.tenant_for("") is None
    assert registry.tenant_for(digest("a-1")) is None          # the digest itself is not a token
    assert registry.tenant_for("x" * 5000) is None             # absurd lengths are not even hashed
    assert token_digest("a-1") == digest("a-1")


@pytest.mark.parametrize("header, reason", [
    (None, "MISSING_TOKEN"), ("", "MISSING_TOKEN"), ("Basic YTpi", "MALFORMED_TOKEN"), ("Bearer", "MALFORMED_TOKEN"),
    ("Bearer   ", "MALFORMED_TOKEN"), ("Bearer wrong", "INVALID_TOKEN"),
])
def test_authentication_failures_are_401_with_a_reason(header, reason):
    with pytest.raises(Unauthenticated) as err:
        TokenRegistry({"lab-a": [digest("right")]}).authenticate(header)
    assert err.value.http_status == 401 and err.value.reason == reason


def test_the_bearer_scheme_is_case_insensitive():
    assert TokenRegistry({"lab-a": [digest("right")]}).authenticate("bearer right") == "lab-a"


def test_token_files_as_lines_or_json():
    lines = f"# comment\n\nlab-a:{digest('a')}\nlab-a : {digest('a2')}\nlab-b:{digest('b')}\n"
    assert parse_token_file(lines) == {"lab-a": [digest("a"), digest("a2")], "lab-b": [digest("b")]}
    as_json = json.dumps({"lab-a": digest("a"), "lab-b": [digest("b"), digest("b2")]})
    assert parse_token_file(as_json) == {"lab-a": [digest("a")], "lab-b": [digest("b"), digest("b2")]}


@pytest.mark.parametrize("text, match", [
    ("lab-a\n", "line 1: expected tenant:sha256"),
    (f"# ok\nlab a:{digest('x')}\n", "line 2: 'lab a' is not a tenant name"),
    ("lab-a:hunter2\n", "never the token itself"),
    ('{"lab-a": 5}', "needs a digest"),
    ("{not json", "not valid JSON"),
])
def test_bad_token_files_name_the_line(text, match):
    with pytest.raises(TokenFileError, match=match):
        parse_token_file(text)


def test_a_token_file_is_reread_when_it_changes_and_a_bad_edit_keeps_the_last_good(tmp_path):
    path = tmp_path / "tokens"
    path.write_text(f"lab-a:{digest('first')}\n")
    registry = TokenRegistry({}, path)
    assert registry.tenant_for("first") == "lab-a" and registry.tenant_for("second") is None
    path.write_text(f"lab-a:{digest('second')}\nlab-b:{digest('third')}\n")
    os.utime(path, ns=(1, 10**18))                 # a new modification time, whatever the clock's resolution
    assert registry.tenant_for("second") == "lab-a" and registry.tenant_for("first") is None
    assert registry.tenants == ["lab-a", "lab-b"]
    path.write_text("garbage\n")
    os.utime(path, ns=(1, 2 * 10**18))
    assert registry.tenant_for("second") == "lab-a" and "line 1" in registry.file_error
    with pytest.raises(TokenFileError):
        TokenRegistry({}, tmp_path / "missing")


# ------------------------------------------------------------------ keys

@pytest.mark.parametrize("key", ["counts", "sessions/2024-05-01/counts", "a/b.c/d_e-f", "0/1/2", "x" * 128])
def test_valid_keys(key):
    assert validate_user_key(key) == key
    assert tenant_key("lab-a", key) == f"tenants/lab-a/{key}"
    assert user_key("lab-a", tenant_key("lab-a", key)) == key


@pytest.mark.parametrize("key, why", [
    ("", "non-empty"), ("../lab-b/x", "'..'"), ("a/../../b", "'..'"), ("a/./b", "'.'"), ("/etc/passwd", "relative"),
    ("a//b", "empty segments"), ("a/b/", "empty segments"), ("a\\b", "only letters"), ("%2e%2e/x", "only letters"),
    (".hidden", "start with a letter"), ("a/.git/config", "start with a letter"), ("naïve", "only letters"),
    ("a\x00b", "only letters"), ("a b", "only letters"), ("x" * 129, "segment of 129"), ("a/" * 40 + "b", "segments"),
    ("k" * 513, "at most 512"),
])
def test_invalid_keys_are_refused_naming_why(key, why):
    with pytest.raises(InvalidArgument, match=why) as err:
        validate_user_key(key)
    assert err.value.reason == "INVALID_KEY" and err.value.http_status == 400


def test_prefixes_and_foreign_keys():
    assert validate_prefix("") == "" and validate_prefix("sessions/") == "sessions/" and validate_prefix("sess") == "sess"
    for bad in ("/", "../", "a//"):
        with pytest.raises(InvalidArgument):
            validate_prefix(bad)
    assert user_key("lab-a", "tenants/lab-b/x") is None
    assert user_key("lab-a", "tenants/lab-ab/x") is None       # a tenant whose name starts like another's
    assert user_key("lab-a", "derived/reduction/Fit/x") is None
    with pytest.raises(ValueError):
        tenant_key("../lab-b", "x")


# ------------------------------------------------------------------ settings

def test_endpoints_from_json_and_single_targets(monkeypatch):
    monkeypatch.setenv("NEUROMESH_GATEWAY_ENDPOINTS", json.dumps(
        {"segmentation": ["127.0.0.1:50054", "127.0.0.1:50154"], "reduction": "dns:///reduction.ns.svc:50052"}))
    settings = load_gateway_settings()
    assert settings.endpoints == {"segmentation": ["127.0.0.1:50054", "127.0.0.1:50154"],
                                  "reduction": ["dns:///reduction.ns.svc:50052"]}


@pytest.mark.parametrize("endpoints, match", [
    ({"seg": ["not a target"]}, "host:port"),
    ({"seg": []}, "no targets"),
    ({"seg": ["dns:///a:1", "127.0.0.1:2"]}, "stands alone"),
    ({"Bad Name": ["127.0.0.1:1"]}, "not a service name"),
])
def test_bad_endpoints_stop_the_gateway_naming_the_variable(endpoints, match):
    with pytest.raises(SettingsError, match="NEUROMESH_GATEWAY_ENDPOINTS") as err:
        load_gateway_settings(endpoints=endpoints)
    assert match in str(err.value)


def test_tokens_in_settings_are_digests_and_a_pasted_token_is_never_echoed():
    assert load_gateway_settings(tokens={"lab-a": digest("t")}).tokens == {"lab-a": [digest("t")]}
    with pytest.raises(SettingsError) as err:
        load_gateway_settings(tokens={"lab-a": "my-secret-token"})
    assert "NEUROMESH_GATEWAY_TOKENS" in str(err.value) and "my-secr" not in str(err.value)
