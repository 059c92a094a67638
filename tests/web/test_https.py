"""`shopwatt web` over HTTPS with the certificate `shopwatt provision broker --tls-listen`
makes: the session cookie is Secure there, and never Secure-less."""

from __future__ import annotations

import http.client
import re
import ssl
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

from agent.localservers import LOOPBACK
from agent.serviceshop import write_config
from gateway.provision.tls import CertPaths, ensure_ca, ensure_server_cert
from tests.web.conftest import PASSWORDS, WebServer, add_users


def test_https_with_the_brokers_certificate_sets_a_secure_session_cookie(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, sensors={"mill": "s-mill"})
    add_users(config)
    now = datetime.now(UTC)
    ca, server_cert = (
        CertPaths(tmp_path / "ca.crt", tmp_path / "ca.key"),
        CertPaths(tmp_path / "server.crt", tmp_path / "server.key"),
    )
    ensure_ca(ca, "test-shop", now, None)
    ensure_server_cert(ca, server_cert, [LOOPBACK], now, None)
    server = WebServer(config, tls=server_cert).start()
    try:
        context = ssl.create_default_context(cafile=ca.cert)  # the shop's CA, nothing else
        conn = http.client.HTTPSConnection(LOOPBACK, server.port, context=context, timeout=30)
        conn.request("GET", "/login")
        page = conn.getresponse()
        form_cookie = page.getheader("set-cookie", "")
        token = re.search(r'name="csrf" value="([^"]+)"', page.read().decode())
        assert token and "Secure" in form_cookie and "HttpOnly" in form_cookie
        body = urllib.parse.urlencode(
            {"csrf": token.group(1), "name": "olga", "password": PASSWORDS["olga"]}
        )
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": form_cookie.split(";")[0],
        }
        conn.request("POST", "/login", body, headers)
        done = conn.getresponse()
        done.read()
        cookies = done.headers.get_all("set-cookie") or []
        session = next(c for c in cookies if c.startswith("shopwatt_session="))
        assert (done.status, done.getheader("location")) == (303, "/floor")
        assert {"HttpOnly", "Secure", "SameSite=strict"} <= {p.strip() for p in session.split(";")}
        conn.close()
    finally:
        server.stop()
