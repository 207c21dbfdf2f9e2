"""Staff sign-in to the inbox against the real servers: the password chosen through the
one-time set-up link, the session cookie and its flags, CSRF, the lockout after repeated
failures, sign-out, a password reset ending open sessions — and no password, code or session
value in any log line."""

from __future__ import annotations

import dataclasses
import logging
import re
from datetime import timedelta

import pytest

from sirene.issues.signin import COOKIE, LoginGuard
from sirene.schemas import utcnow

from .conftest import Issues

pytestmark = pytest.mark.integration

PASSWORD = "Laternen leuchten um 17 Uhr"


def _csrf(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert found is not None
    return found.group(1)


async def test_password_set_up_sign_in_session_and_sign_out(
    issues: Issues, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tenant = issues.tenants[0]
    code = issues.setup_codes[(tenant, "anna")]
    admin = issues.admin(tenant)
    listed = (await issues.client.get("/api/v1/admin/staff", headers=admin)).json()
    anna = next(s for s in listed if s["id"] == "anna")
    assert anna["password_set"] is False
    assert anna["token"] is None
    assert anna["setup_code"] is None
    assert "password_hash" not in anna
    assert "setup_hash" not in anna

    page = await issues.client.get(f"/portal/{tenant}/staff/passwort")
    assert page.status_code == 200
    assert 'autocomplete="new-password"' in page.text
    setup = f"/portal/{tenant}/staff/passwort"
    for form, reason in [
        ({"password": PASSWORD, "repeat": PASSWORD + "x"}, "stimmen nicht überein"),
        ({"password": "kurz", "repeat": "kurz"}, "mindestens 12 Zeichen"),
        ({"password": "anna-und-ihr-rad", "repeat": "anna-und-ihr-rad"}, "zu leicht"),
        ({"password": "aaaaaaaaaaaaaa", "repeat": "aaaaaaaaaaaaaa"}, "zu leicht"),
    ]:
        refused = await issues.client.post(setup, data={"code": code, **form})
        assert refused.status_code == 422, form
        assert reason in refused.text, form
    wrong = await issues.client.post(
        setup, data={"code": "x" * 43, "password": PASSWORD, "repeat": PASSWORD}
    )
    assert wrong.status_code == 422
    assert "ungültig, abgelaufen oder schon benutzt" in wrong.text
    done = await issues.set_password(tenant, "anna", PASSWORD)
    assert done.status_code == 200, done.text
    assert "Ihr Passwort ist festgelegt" in done.text
    assert "„anna“" in done.text
    again = await issues.client.post(
        setup, data={"code": code, "password": PASSWORD, "repeat": PASSWORD}
    )
    assert again.status_code == 422  # once only
    listed = (await issues.client.get("/api/v1/admin/staff", headers=admin)).json()
    assert next(s for s in listed if s["id"] == "anna")["password_set"] is True

    async with issues.browser() as browser:
        login = await browser.get(f"/portal/{tenant}/staff")
        assert 'id="login"' in login.text
        assert 'name="csrf-token"' not in login.text
        assert login.headers["cache-control"] == "no-store"
        failed = await browser.post(
            f"/portal/{tenant}/staff/anmelden", data={"staff_id": "anna", "password": "falsch!"}
        )
        assert failed.status_code == 401
        assert "Kennung oder Passwort ist falsch." in failed.text
        assert COOKIE not in browser.cookies
        unknown = await browser.post(
            f"/portal/{tenant}/staff/anmelden", data={"staff_id": "niemand", "password": PASSWORD}
        )
        assert unknown.status_code == 401
        assert "Kennung oder Passwort ist falsch." in unknown.text  # same answer
        # the account exists in this tenant only
        elsewhere = await browser.post(
            f"/portal/{issues.tenants[1]}/staff/anmelden",
            data={"staff_id": "anna", "password": PASSWORD},
        )
        assert elsewhere.status_code == 401

        signed = await browser.post(
            f"/portal/{tenant}/staff/anmelden", data={"staff_id": " Anna ", "password": PASSWORD}
        )
        assert signed.status_code == 303
        assert signed.headers["location"] == f"/portal/{tenant}/staff"
        cookie = signed.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=")
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert "Secure" not in cookie  # development: plain HTTP; see the secure test below
        assert "Max-Age" not in cookie  # ends with the browser; Redis ends idle sessions
        inbox = await browser.get(f"/portal/{tenant}/staff")
        assert 'Angemeldet als <strong id="wer">Anna (Sachbearbeitung)</strong>' in inbox.text
        csrf = _csrf(inbox.text)
        me = await browser.get("/api/v1/me")
        assert me.status_code == 200
        assert me.json()["id"] == "anna"
        assert me.json()["tenant"] == tenant

        # sign-out needs the page's CSRF token (a forged form leaves the session alone)
        forged = await browser.post(f"/portal/{tenant}/staff/abmelden", data={"csrf": "forged"})
        assert forged.status_code == 303
        assert (await browser.get("/api/v1/me")).status_code == 200
        out = await browser.post(f"/portal/{tenant}/staff/abmelden", data={"csrf": csrf})
        assert out.status_code == 303
        assert out.headers["location"] == f"/portal/{tenant}/staff?abgemeldet=1"
        assert COOKIE not in browser.cookies
        assert "Sie sind abgemeldet." in (await browser.get(out.headers["location"])).text
        # the old session value no longer works, even presented again
        async with issues.browser() as replay:
            replay.cookies.set(COOKIE, cookie.split(";")[0].split("=", 1)[1])
            assert (await replay.get("/api/v1/me")).status_code == 401

    secrets = [PASSWORD, code, cookie.split(";")[0].split("=", 1)[1], csrf]
    logged = "\n".join(r.getMessage() + " " + repr(r.__dict__) for r in caplog.records)
    assert "staff signed in" in logged  # sign-ins are logged ...
    for secret in secrets:
        assert secret not in logged  # ... without any secret


async def test_a_password_reset_ends_open_sessions(issues: Issues) -> None:
    tenant = issues.tenants[0]
    browser, _ = await issues.signed_in(tenant, "lena", PASSWORD)
    try:
        assert (await browser.get("/api/v1/me")).status_code == 200
        agent = await issues.client.post(
            "/api/v1/admin/staff/lena/password-link", headers=issues.staff(tenant, "anna")
        )
        assert agent.status_code == 403
        link = await issues.client.post(
            "/api/v1/admin/staff/lena/password-link", headers=issues.admin(tenant)
        )
        assert link.status_code == 201, link.text
        body = link.json()
        assert body["setup_url"].endswith(f"/{tenant}/staff/passwort#code={body['setup_code']}")
        assert (
            await issues.client.post(
                "/api/v1/admin/staff/niemand/password-link", headers=issues.admin(tenant)
            )
        ).status_code == 404
        # until the new password is set, the old one still works
        assert (await browser.get("/api/v1/me")).status_code == 200
        new = "Der Brunnen am Markt plätschert"
        changed = await issues.client.post(
            f"/portal/{tenant}/staff/passwort",
            data={"code": body["setup_code"], "password": new, "repeat": new},
        )
        assert changed.status_code == 200, changed.text
        assert (await browser.get("/api/v1/me")).status_code == 401
        assert 'id="login"' in (await browser.get(f"/portal/{tenant}/staff")).text
    finally:
        await browser.aclose()
    old = await issues.client.post(
        f"/portal/{tenant}/staff/anmelden", data={"staff_id": "lena", "password": PASSWORD}
    )
    assert old.status_code == 401  # the old password is gone
    fresh, _ = await issues.signed_in(tenant, "lena", new)
    await fresh.aclose()


async def test_an_expired_set_up_link_is_refused(issues: Issues) -> None:
    tenant = issues.tenants[1]
    repo = issues.app.state.ctx.repo
    await repo.kind("staff").update_one(
        {"tenant": tenant, "id": "bernd"},
        {"$set": {"setup_expires_at": utcnow() - timedelta(minutes=1)}},
    )
    expired = await issues.set_password(tenant, "bernd", PASSWORD)
    assert expired.status_code == 422
    assert "abgelaufen" in expired.text


async def test_repeated_failures_lock_the_account_then_sign_in_works_again(
    issues: Issues,
) -> None:
    tenant = issues.tenants[1]
    ctx = issues.app.state.ctx
    guard = LoginGuard(
        issues.app.state.infra.redis,
        limit=3,
        window_s=60,
        prefix=f"sirene:issues:test-login:{tenant}",
    )
    issues.app.state.ctx = dataclasses.replace(ctx, logins=guard)
    try:
        assert (await issues.set_password(tenant, "anna", PASSWORD)).status_code == 200
        async with issues.browser() as browser:
            sign_in = f"/portal/{tenant}/staff/anmelden"
            for _ in range(3):
                failed = await browser.post(
                    sign_in, data={"staff_id": "anna", "password": "geraten"}
                )
                assert failed.status_code == 401
            blocked = await browser.post(sign_in, data={"staff_id": "anna", "password": PASSWORD})
            assert blocked.status_code == 429
            assert "Zu viele fehlgeschlagene Anmeldungen" in blocked.text
            assert COOKIE not in browser.cookies
            # another account of the tenant is not affected
            other, _ = await issues.signed_in(tenant, "lena")
            await other.aclose()
            await guard.succeeded(tenant, "anna")  # the window has passed
            signed = await browser.post(sign_in, data={"staff_id": "anna", "password": PASSWORD})
            assert signed.status_code == 303
    finally:
        issues.app.state.ctx = ctx


async def test_the_cookie_is_secure_when_configured(issues: Issues) -> None:
    tenant = issues.tenants[0]
    ctx = issues.app.state.ctx
    secure = ctx.settings.model_copy(update={"session_cookie_secure": True})
    issues.app.state.ctx = dataclasses.replace(ctx, settings=secure)
    try:
        assert (await issues.set_password(tenant, "bernd", PASSWORD)).status_code == 200
        async with issues.browser() as browser:
            signed = await browser.post(
                f"/portal/{tenant}/staff/anmelden", data={"staff_id": "bernd", "password": PASSWORD}
            )
            assert signed.status_code == 303
            assert "Secure" in signed.headers["set-cookie"]
    finally:
        issues.app.state.ctx = ctx
    assert ctx.settings.model_copy(update={"environment": "production"}).cookie_secure
    assert not ctx.settings.cookie_secure


async def test_a_member_changes_the_password_and_other_sessions_end(issues: Issues) -> None:
    tenant = issues.tenants[0]
    here, csrf = await issues.signed_in(tenant, "bernd", PASSWORD)
    elsewhere, _ = await issues.signed_in(tenant, "bernd", PASSWORD)  # another browser
    change = f"/portal/{tenant}/staff/passwort-aendern"
    new = "Die Glocken läuten zur Mittagszeit"
    try:
        async with issues.browser() as stranger:  # not signed in: to the sign-in page
            assert (await stranger.get(change)).status_code == 303
        page = await here.get(change)
        assert 'autocomplete="current-password"' in page.text
        assert f'name="csrf" value="{csrf}"' in page.text
        forged = await here.post(
            change, data={"csrf": "forged", "current": PASSWORD, "password": new, "repeat": new}
        )
        assert forged.status_code == 303  # not from the page: nothing changes
        wrong = await here.post(
            change, data={"csrf": csrf, "current": "geraten!", "password": new, "repeat": new}
        )
        assert wrong.status_code == 422
        assert "Das bisherige Passwort stimmt nicht." in wrong.text
        same = await here.post(
            change,
            data={"csrf": csrf, "current": PASSWORD, "password": PASSWORD, "repeat": PASSWORD},
        )
        assert "muss sich vom bisherigen unterscheiden" in same.text
        changed = await here.post(
            change, data={"csrf": csrf, "current": PASSWORD, "password": new, "repeat": new}
        )
        assert changed.status_code == 200, changed.text
        assert "Ihr Passwort ist geändert." in changed.text
        assert COOKIE in changed.headers["set-cookie"]
        assert (await here.get("/api/v1/me")).status_code == 200  # this browser stays in
        assert (await elsewhere.get("/api/v1/me")).status_code == 401  # the other one is out
    finally:
        await here.aclose()
        await elsewhere.aclose()
    old = await issues.client.post(
        f"/portal/{tenant}/staff/anmelden", data={"staff_id": "bernd", "password": PASSWORD}
    )
    assert old.status_code == 401
    fresh, _ = await issues.signed_in(tenant, "bernd", new)
    await fresh.aclose()
