#!/usr/bin/env python3
"""A yibao channel, end to end, with nothing but the Python 3 standard library.

Usage:
    python3 yibao_channel.py BASE_URL CHANNEL_ID SECRET ID_NUMBER NAME

With `yibao demo` running, its printout gives all five, for example:
    python3 yibao_channel.py http://127.0.0.1:8080 wechat demo-secret-wechat-pay-000 \
        320602202606100002 史桂春

What it does (docs/integrator-guide.md explains each step):
  1. checks its own signing against the guide's test vector;
  2. searches the person's payables and picks the first unpaid one;
  3. opens an order for it, then opens it again (same channel_order_no: the same order);
  4. reports the payment, then reports it again (same channel_txn_id: the same answer);
  5. asks for the payment's status;
  6. searches the person's receipts;
  7. reverses the payment (冲正), so the payable is unpaid again and the example can run again;
  8. lists the refunds owed through the channel.
Every response signature is verified; a wrong one stops the example.
"""

import hashlib
import hmac
import json
import secrets
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone


# --- Signing (docs/integrator-guide.md, "Signing") -------------------------------------------------

def string_to_sign(first, path_and_query, timestamp, nonce, body):
    """METHOD (or STATUS) \n PATH_AND_QUERY \n TIMESTAMP \n NONCE \n hex(SHA-256(body)) \n"""
    body_hash = hashlib.sha256(body).hexdigest()
    return f"{first}\n{path_and_query}\n{timestamp}\n{nonce}\n{body_hash}\n"


def sign(secret, text):
    """Lowercase hex of HMAC-SHA256(secret, text)."""
    return hmac.new(secret, text.encode("utf-8"), hashlib.sha256).hexdigest()


def new_nonce():
    """32 characters of [0-9a-f]: within the protocol's 16 to 64 of [A-Za-z0-9]."""
    return secrets.token_hex(16)


def check_test_vector():
    """The guide's request vector 1: if this fails, nothing else can work."""
    text = string_to_sign(
        "POST", "/channel/v1/payables/search", 1604283300,
        "AbCdEfGh0123456789IjKlMnOpQrStUv",
        '{"id_number":"11010519491231002X","name":"张三"}'.encode("utf-8"))
    expected = "4ec8a7ff704830c27e0934c3c77c6a0a61ad87e324da64b01ed9ff0400887e1e"
    actual = sign(b"yibao-test-secret-0001", text)
    if actual != expected:
        sys.exit(f"signing does not match the guide's test vector: {actual}")


# --- One signed call ------------------------------------------------------------------------------

class ChannelError(Exception):
    """An error answer: HTTP status and the body's stable code and Chinese message."""

    def __init__(self, status, body):
        self.status = status
        self.code = body.get("code")
        self.message = body.get("message")
        self.request_id = body.get("request_id")
        super().__init__(f"{status} {self.code}: {self.message} (request_id {self.request_id})")


class Channel:
    def __init__(self, base_url, channel_id, secret):
        self.base_url = base_url.rstrip("/")
        self.channel_id = channel_id
        self.secret = secret.encode("utf-8")

    def call(self, method, path_and_query, payload=None, body=None, content_type="application/json"):
        """Signs and sends one request, verifies the response signature, returns (status, JSON)."""
        if payload is not None:
            # Sign exactly the bytes that are sent: serialise once, then hash and send those bytes.
            body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        body = body or b""
        timestamp = int(time.time())
        nonce = new_nonce()
        signature = sign(self.secret, string_to_sign(method, path_and_query, timestamp, nonce, body))
        headers = {
            "Yibao-Channel": self.channel_id,
            "Yibao-Timestamp": str(timestamp),
            "Yibao-Nonce": nonce,
            "Yibao-Signature": signature,
        }
        if body:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.base_url + path_and_query, data=body or None,
                                         headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, answer, answer_headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, answer, answer_headers = error.code, error.read(), error.headers
        self.verify(status, path_and_query, answer_headers, answer)
        decoded = json.loads(answer) if answer else {}
        if status >= 400:
            raise ChannelError(status, decoded)
        return status, decoded

    def verify(self, status, path_and_query, headers, body):
        """A response is yibao's only if its signature checks out. Error answers to a request whose
        channel id is unknown cannot be signed (yibao has no secret to sign with): they carry none."""
        signature = headers.get("Yibao-Signature")
        if signature is None and status == 401:
            return
        text = string_to_sign(str(status), path_and_query, headers.get("Yibao-Timestamp"),
                              headers.get("Yibao-Nonce"), body)
        if signature is None or not hmac.compare_digest(sign(self.secret, text), signature):
            sys.exit(f"response signature wrong or missing for {path_and_query}: do not trust it")


def show(step, status, answer):
    print(f"== {step}: HTTP {status}")
    print(json.dumps(answer, ensure_ascii=False, indent=2))


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    base_url, channel_id, secret, id_number, name = sys.argv[1:]
    check_test_vector()
    channel = Channel(base_url, channel_id, secret)

    # 1. Search. With the name, the answer is refused (404) unless it matches the agency's record.
    status, found = channel.call("POST", "/channel/v1/payables/search",
                                 {"id_number": id_number, "name": name})
    show("search", status, found)
    unpaid = [p for p in found["payables"] if p["status"] == "unpaid"]
    if not unpaid:
        sys.exit("nothing unpaid for this person (paid, exempt, or held by an open order)")
    payable = unpaid[0]

    # 2. Open an order. Our own order number is the idempotency key: sending it again is safe.
    order_request = {"channel_order_no": "PY" + secrets.token_hex(8),
                     "payable_ids": [payable["payable_id"]],
                     "amount": payable["amount"],
                     "payer": {"name": name}}
    status, order = channel.call("POST", "/channel/v1/orders", order_request)
    show("order", status, order)  # 201 Created
    status, again = channel.call("POST", "/channel/v1/orders", order_request)
    assert status == 200 and again["order_no"] == order["order_no"], again

    # 3. The citizen pays; report it. Our transaction id is the idempotency key: after a timeout,
    #    send the very same report again and you get the very same answer.
    paid_at = datetime.now(timezone(timedelta(hours=8))).replace(microsecond=0).isoformat()
    channel_txn_id = "PYT" + secrets.token_hex(8)
    payment = {"channel_txn_id": channel_txn_id, "order_no": order["order_no"],
               "amount": order["amount"], "paid_at": paid_at}
    status, report = channel.call("POST", "/channel/v1/payments", payment)
    show("payment", status, report)
    status, repeated = channel.call("POST", "/channel/v1/payments", payment)
    assert repeated == report, repeated

    # 4. Status: what a channel asks when it does not know whether its report arrived.
    status, state = channel.call("GET", f"/channel/v1/payments/{channel_txn_id}")
    show("payment status", status, state)

    # 5. Receipts of the person (the name is required here).
    try:
        status, receipts = channel.call("POST", "/channel/v1/receipts/search",
                                        {"id_number": id_number, "name": name})
        show("receipts", status, receipts)
    except ChannelError as error:
        print(f"== receipts: {error}")

    # 6. Reverse (冲正): the debit did not complete after all. Idempotent.
    status, reversed_ = channel.call("POST", f"/channel/v1/payments/{channel_txn_id}/reversal",
                                     {"reason": "示例：冲正"})
    show("reversal", status, reversed_)

    # 7. Refunds owed through this channel: pay each back, then report its result.
    status, refunds = channel.call("GET", "/channel/v1/refunds?status=pending")
    show("refunds owed", status, refunds)

    # An error answer, for the record: the same transaction id with another amount.
    try:
        channel.call("POST", "/channel/v1/payments", dict(payment, amount=payment["amount"] + 1))
    except ChannelError as error:
        print(f"== conflicting repeat: {error}")
        assert error.code == "IDEMPOTENCY_CONFLICT", error.code
    print("OK")


if __name__ == "__main__":
    main()
