"""Schemathesis hooks for yibao (used by scripts/schemathesis): authenticate every generated request
so that fuzzing reaches the handlers instead of stopping at 401.

- /channel/v1/... requests are signed per the channel protocol (shared/spec/channel-protocol.md,
  "Authentication"; crates/yibao-channel-client/src/signing.rs) as the demo channel `wechat`:
  Yibao-Channel, Yibao-Timestamp (now), Yibao-Nonce (fresh) and Yibao-Signature =
  hex HMAC-SHA256(secret, METHOD\\nPATH_AND_QUERY\\nTIMESTAMP\\nNONCE\\nhex(SHA-256(body))\\n). The
  signature is computed on the prepared request, so it covers the exact bytes and path sent.
- /api/v1/... requests carry `Authorization: Bearer <token>` of the demo administrator, logged in
  once. Logout is sent without it, so that a generated logout cannot end the shared session.

- Channel bodies that name a person or payables are generated as they come, and also with a real
  demo resident (YIBAO_SAMPLE_ID_NUMBER, YIBAO_SAMPLE_NAME) and that resident's first payable and
  amount, so that searches, orders and payments get past "no such person" to the payment logic.

Environment: YIBAO_BASE_URL (the server), optionally YIBAO_ADMIN_USER / YIBAO_ADMIN_PASSWORD,
YIBAO_CHANNEL / YIBAO_CHANNEL_SECRET (defaults: the demo's, printed by `yibao demo`) and the
sample resident above (without it, bodies are used as generated). With YIBAO_HOOKS_LOG=FILE,
every call's method, path template and status are appended to FILE (scripts/schemathesis sums
them up, to show how far the requests got).
"""

import datetime
import hashlib
import hmac
import os
import string
import threading
import time
import uuid

import requests
import schemathesis
from schemathesis.core.parameters import ParameterLocation
from hypothesis import strategies as st

BASE_URL = os.environ.get("YIBAO_BASE_URL", "http://127.0.0.1:8080").rstrip("/")
ADMIN_USER = os.environ.get("YIBAO_ADMIN_USER", "admin")
ADMIN_PASSWORD = os.environ.get("YIBAO_ADMIN_PASSWORD", "yibao-demo-admin")
CHANNEL = os.environ.get("YIBAO_CHANNEL", "wechat")
CHANNEL_SECRET = os.environ.get("YIBAO_CHANNEL_SECRET", "demo-secret-wechat-pay-000").encode()
SAMPLE_ID_NUMBER = os.environ.get("YIBAO_SAMPLE_ID_NUMBER")
SAMPLE_NAME = os.environ.get("YIBAO_SAMPLE_NAME")
CALLS_LOG = os.environ.get("YIBAO_HOOKS_LOG")
_calls_lock = threading.Lock()

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
    """The administrator's token, in place of any bearer token schemathesis generated from the
    document's security scheme (a random one would only be refused)."""

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {admin_token()}"
        return request


def negative_headers(case):
    """Whether schemathesis generated this case's headers to break the schema: the only headers
    the document declares are the authentication ones, so the case tests refusal without them,
    and the hook must not put them back."""
    meta = getattr(case, "meta", None)
    try:
        return meta is not None and meta.is_negative_at(ParameterLocation.HEADER)
    except Exception:  # an older schemathesis without the metadata
        return False


# What the hook signs in with must survive the run: a generated call that would disable, or
# change the password or secret of, the administrator or channel the hook uses is pointed at a
# name that does not exist instead (its 404 is still checked).
PROTECTED_PATH_VALUES = {
    "username": ADMIN_USER,
    "channel_id": CHANNEL,
}


def protect_credentials(case):
    params = case.path_parameters or {}
    for name, value in PROTECTED_PATH_VALUES.items():
        if params.get(name) == value:
            params[name] = f"{value}-not-this-one"
    case.path_parameters = params


@schemathesis.hook
def before_call(context, case, kwargs):
    path = case.operation.path
    if path.startswith("/api/v1/staff/{username}") or path.startswith("/api/v1/channels/{channel_id}"):
        protect_credentials(case)
    if negative_headers(case):
        return
    if path.startswith("/channel/"):
        kwargs["auth"] = ChannelSigner()
    elif path.startswith("/api/v1/") and path not in ("/api/v1/auth/login", "/api/v1/auth/logout"):
        kwargs["auth"] = AdminBearer()


_sample_lock = threading.Lock()
_sample_payable = None


def sample_payable():
    """(payable_id, amount) of the sample resident's first payable, looked up once; or None."""
    global _sample_payable
    if not (SAMPLE_ID_NUMBER and SAMPLE_NAME):
        return None
    with _sample_lock:
        if _sample_payable is None:
            response = requests.post(
                f"{BASE_URL}/channel/v1/payables/search",
                json={"id_number": SAMPLE_ID_NUMBER, "name": SAMPLE_NAME},
                auth=ChannelSigner(),
                timeout=30,
            )
            payables = response.json().get("payables", []) if response.ok else []
            _sample_payable = (
                (payables[0]["payable_id"], payables[0]["amount"]) if payables else ()
            )
        return _sample_payable or None


def well_typed(value, kind):
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        # The document says int64.
        return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def swapped(body, **values):
    """`body` with the given fields replaced, each only where the generated value has the type the
    document gives it: a body generated to break the schema (negative mode) stays broken, for
    the same reason, and one that keeps to it still does."""
    kinds = {
        "id_number": "str",
        "name": "str",
        "payable_ids": "strs",
        "amount": "int",
        "paid_at": "str",
        "channel_txn_id": "str",
        "channel_order_no": "str",
    }
    out = dict(body)
    for key, value in values.items():
        if key in out and well_typed(out[key], kinds[key]):
            out[key] = value
    return out


@schemathesis.hook
def flatmap_body(context, body):
    """The generated body, or the same with the sample resident's identity or payable in it."""
    if not isinstance(body, dict) or not (SAMPLE_ID_NUMBER and SAMPLE_NAME):
        return st.just(body)
    path = context.operation.path
    variants = [body]
    if path in ("/channel/v1/payables/search", "/channel/v1/receipts/search"):
        variants.append(swapped(body, id_number=SAMPLE_ID_NUMBER, name=SAMPLE_NAME))
    elif path in ("/channel/v1/orders", "/channel/v1/payments"):
        payable = sample_payable()
        if payable:
            payable_id, amount = payable
            variants.append(swapped(body, payable_ids=[payable_id]))
            china = datetime.timezone(datetime.timedelta(hours=8))
            now = datetime.datetime.now(china).isoformat(timespec="seconds")
            # With a well-formed channel id too (1 to 64 visible ASCII), for the payment logic.
            channel_ids = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=64)
            unique = [v for i, v in enumerate(variants) if v not in variants[:i]]
            return st.one_of(
                st.sampled_from(unique),
                channel_ids.map(
                    lambda channel_id: swapped(
                        body,
                        payable_ids=[payable_id],
                        amount=amount,
                        paid_at=now,
                        channel_txn_id=channel_id,
                        channel_order_no=channel_id,
                    )
                ),
            )
    return st.sampled_from([v for i, v in enumerate(variants) if v not in variants[:i]])


@schemathesis.hook
def after_call(context, case, response):
    if CALLS_LOG:
        with _calls_lock, open(CALLS_LOG, "a", encoding="utf-8") as log:
            log.write(f"{case.method.upper()} {case.operation.path} {response.status_code}\n")
