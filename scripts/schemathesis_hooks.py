"""Schemathesis hooks for yibao (used by scripts/schemathesis): authenticate every generated request
so that fuzzing reaches the handlers instead of stopping at 401.

- /channel/v1/... requests are signed per the channel protocol (shared/spec/channel-protocol.md,
  "Authentication"; crates/yibao-channel-client/src/signing.rs) as the demo channel `wechat`:
  Yibao-Channel, Yibao-Timestamp (now), Yibao-Nonce (fresh) and Yibao-Signature =
  hex HMAC-SHA256(secret, METHOD\\nPATH_AND_QUERY\\nTIMESTAMP\\nNONCE\\nhex(SHA-256(body))\\n). The
  signature is computed on the prepared request, so it covers the exact bytes and path sent.
- /api/v1/... requests carry `Authorization: Bearer <token>` of the demo administrator, logged in
  once. Logout is sent without it, so that a generated logout cannot end the shared session.

Environment: YIBAO_BASE_URL (the server), optionally YIBAO_ADMIN_USER / YIBAO_ADMIN_PASSWORD and
YIBAO_CHANNEL / YIBAO_CHANNEL_SECRET (defaults: the demo's, printed by `yibao demo`).
"""

import hashlib
import hmac
import os
import threading
import time
import uuid

import requests
import schemathesis

BASE_URL = os.environ.get("YIBAO_BASE_URL", "http://127.0.0.1:8080").rstrip("/")
ADMIN_USER = os.environ.get("YIBAO_ADMIN_USER", "admin")
ADMIN_PASSWORD = os.environ.get("YIBAO_ADMIN_PASSWORD", "yibao-demo-admin")
CHANNEL = os.environ.get("YIBAO_CHANNEL", "wechat")
CHANNEL_SECRET = os.environ.get("YIBAO_CHANNEL_SECRET", "demo-secret-wechat-pay-000").encode()

# The headers this hook owns: a generated value for one of them would only make the request fail
# authentication, which is not what is being tested.
SIGNING_HEADERS = ("Yibao-Channel", "Yibao-Timestamp", "Yibao-Nonce", "Yibao-Signature")

_token_lock = threading.Lock()
_token = None


def admin_token():
    """The administrator's bearer token, logging in on first use."""
    global _token
    with _token_lock:
        if _token is None:
            response = requests.post(
                f"{BASE_URL}/api/v1/auth/login",
                json={"username": ADMIN_USER, "password": ADMIN_PASSWORD},
                timeout=30,
            )
            response.raise_for_status()
            _token = response.json()["token"]
        return _token


def string_to_sign(method, path_and_query, timestamp, nonce, body):
    body_hash = hashlib.sha256(body or b"").hexdigest()
    return f"{method}\n{path_and_query}\n{timestamp}\n{nonce}\n{body_hash}\n"


class ChannelSigner(requests.auth.AuthBase):
    """Signs the prepared request: the body and the path and query exactly as they go out."""

    def __call__(self, request):
        body = request.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        timestamp = str(int(time.time()))
        nonce = uuid.uuid4().hex
        to_sign = string_to_sign(request.method.upper(), request.path_url, timestamp, nonce, body)
        signature = hmac.new(CHANNEL_SECRET, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        for name in SIGNING_HEADERS:
            request.headers.pop(name, None)
        request.headers["Yibao-Channel"] = CHANNEL
        request.headers["Yibao-Timestamp"] = timestamp
        request.headers["Yibao-Nonce"] = nonce
        request.headers["Yibao-Signature"] = signature
        return request


class AdminBearer(requests.auth.AuthBase):
    def __call__(self, request):
        if "Authorization" not in request.headers:
            request.headers["Authorization"] = f"Bearer {admin_token()}"
        return request


@schemathesis.hook
def before_call(context, case, kwargs):
    path = case.operation.path
    if path.startswith("/channel/"):
        kwargs["auth"] = ChannelSigner()
    elif path.startswith("/api/v1/") and path not in ("/api/v1/auth/login", "/api/v1/auth/logout"):
        kwargs["auth"] = AdminBearer()
