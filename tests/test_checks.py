"""System checks: a broken installation is reported by ``manage.py check``, not found in production."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, run_checks
from django.test import override_settings

from oauth_server.checks import check_installation, check_security


def ids(messages) -> list[str]:
    return [m.id for m in messages if m.id and m.id.startswith("oauth_server.")]


# What check --deploy asks of a production site (oauth_server.W003); the test site leaves it unset.
KEY_SECRET = {"SIGNING_KEY_ENCRYPTION_SECRET": "a-separate-signing-key-encryption-secret"}


def test_the_test_site_is_clean():
    assert ids(run_checks()) == []
    with override_settings(OAUTH_SERVER=KEY_SECRET):
        assert ids(run_checks(include_deployment_checks=True)) == []


def test_missing_oauth2_provider_is_e001():
    apps = [app for app in settings.INSTALLED_APPS if app != "oauth2_provider"]
    with override_settings(INSTALLED_APPS=apps):
        messages = check_installation()
    assert ids(messages) == ["oauth_server.E001"]
    assert isinstance(messages[0], Error)
    assert "oauth2_provider" in messages[0].hint


def test_e001_is_found_by_run_checks():
    apps = [app for app in settings.INSTALLED_APPS if app != "oauth2_provider"]
    with override_settings(INSTALLED_APPS=apps):
        assert "oauth_server.E001" in ids(run_checks(tags=[Tags.compatibility]))


def test_conflicting_swap_setting_is_e002():
    with override_settings(OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL="myapp.MyToken"):
        messages = check_installation()
    assert ids(messages) == ["oauth_server.E002"]
    assert "OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL" in messages[0].msg
    assert "myapp.MyToken" in messages[0].msg


def test_each_conflicting_swap_is_reported():
    with override_settings(
        OAUTH2_PROVIDER_APPLICATION_MODEL="myapp.App", OAUTH2_PROVIDER_GRANT_MODEL="myapp.Grant"
    ):
        assert ids(check_installation()) == ["oauth_server.E002", "oauth_server.E002"]


def test_swap_setting_equal_to_ours_is_fine():
    with override_settings(OAUTH2_PROVIDER_APPLICATION_MODEL="oauth_server.Client"):
        assert ids(check_installation()) == []


@override_settings(OAUTH_SERVER={"REQUIRE_PKCE": False, **KEY_SECRET})
def test_pkce_off_is_w001_on_deploy():
    messages = check_security()
    assert ids(messages) == ["oauth_server.W001"]
    assert isinstance(messages[0], Warning)
    assert "oauth_server.W001" in ids(run_checks(include_deployment_checks=True, tags=[Tags.security]))
    # A deploy check: plain `manage.py check` does not show it.
    assert "oauth_server.W001" not in ids(run_checks())


@override_settings(OAUTH_SERVER=KEY_SECRET)
def test_pkce_on_has_no_warning():
    assert ids(check_security()) == []


# --- oauth_server.W003: signing keys encrypted under SECRET_KEY ------------------------------------------
def test_no_separate_key_encryption_secret_is_w003_on_deploy():
    messages = check_security()
    assert ids(messages) == ["oauth_server.W003"]
    assert isinstance(messages[0], Warning)
    assert "SIGNING_KEY_ENCRYPTION_SECRET_FALLBACKS" in messages[0].hint
    assert "oauth_server.W003" in ids(run_checks(include_deployment_checks=True, tags=[Tags.security]))
    assert "oauth_server.W003" not in ids(run_checks())


def test_key_encryption_secret_equal_to_secret_key_is_w003():
    with override_settings(OAUTH_SERVER={"SIGNING_KEY_ENCRYPTION_SECRET": settings.SECRET_KEY}):
        assert ids(check_security()) == ["oauth_server.W003"]
    with override_settings(OAUTH_SERVER={"SIGNING_KEY_ENCRYPTION_SECRET": ""}):
        assert ids(check_security()) == ["oauth_server.W003"]


def test_separate_key_encryption_secret_has_no_w003():
    with override_settings(OAUTH_SERVER=KEY_SECRET):
        assert ids(check_security()) == []
