#!/usr/bin/env bash
# A yibao channel from the shell: curl to send, openssl to sign and to verify the answers.
#
# Usage:
#     bash yibao_channel.sh BASE_URL CHANNEL_ID SECRET ID_NUMBER
#
# With `yibao demo` running, its printout gives all four, for example:
#     bash yibao_channel.sh http://127.0.0.1:8080 wechat demo-secret-wechat-pay-000 320602202606100002
#
# It checks its signing against the guide's test vector, then searches the person's payables
# (POST with a JSON body), lists the refunds owed (GET with a query string) and uploads an empty
# daily statement for yesterday (PUT with a text/csv body), verifying every answer's signature.
# Needs bash, curl, openssl (1.1 or 3.x) and GNU or BSD date.
set -euo pipefail

if [ $# -ne 4 ]; then
    sed -n '4,8p' "$0" >&2
    exit 2
fi
BASE_URL=${1%/}
CHANNEL_ID=$2
SECRET=$3
ID_NUMBER=$4
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Lowercase hex SHA-256 of a file (an empty file hashes as the empty string).
sha256_hex() { openssl dgst -sha256 -r <"$1" | cut -d' ' -f1; }

# Lowercase hex HMAC-SHA256(SECRET, string to sign), the string built from five fields, each followed
# by a newline. The string is piped straight into openssl: never through $(...), which would drop
# the final newline. (A secret that is not text: -mac HMAC -macopt hexkey:HEX instead of -hmac.)
sign() { # FIRST PATH_AND_QUERY TIMESTAMP NONCE BODY_HASH
    printf '%s\n%s\n%s\n%s\n%s\n' "$1" "$2" "$3" "$4" "$5" |
        openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1
}

# The guide's request vector 1 (secret yibao-test-secret-0001): if this fails, nothing else can work.
check_test_vector() {
    local body=$WORK/vector.json expected=4ec8a7ff704830c27e0934c3c77c6a0a61ad87e324da64b01ed9ff0400887e1e
    printf '%s' '{"id_number":"11010519491231002X","name":"张三"}' >"$body"
    local actual
    actual=$(SECRET=yibao-test-secret-0001 sign POST /channel/v1/payables/search 1604283300 \
        AbCdEfGh0123456789IjKlMnOpQrStUv "$(sha256_hex "$body")")
    if [ "$actual" != "$expected" ]; then
        echo "signing does not match the guide's test vector: $actual" >&2
        exit 1
    fi
}

# call METHOD PATH_AND_QUERY [BODY_FILE [CONTENT_TYPE]]: signs, sends, verifies the answer's
# signature, prints the status and the body; stops on an error answer. The body is sent from the
# file byte for byte (--data-binary), so what is hashed is what is sent.
call() {
    local method=$1 path=$2 body=${3:-$WORK/empty} type=${4:-application/json}
    : >"$WORK/empty"
    local timestamp nonce signature status
    timestamp=$(date +%s)
    nonce=$(openssl rand -hex 16)
    signature=$(sign "$method" "$path" "$timestamp" "$nonce" "$(sha256_hex "$body")")
    local args=(-sS -X "$method" -o "$WORK/answer" -D "$WORK/headers" -w '%{http_code}'
        -H "Yibao-Channel: $CHANNEL_ID" -H "Yibao-Timestamp: $timestamp"
        -H "Yibao-Nonce: $nonce" -H "Yibao-Signature: $signature")
    if [ -s "$body" ]; then
        args+=(-H "Content-Type: $type" --data-binary "@$body")
    fi
    status=$(curl "${args[@]}" "$BASE_URL$path")
    # The answer is signed over STATUS, the same PATH_AND_QUERY, its own timestamp and nonce, and the
    # hash of its body. (An answer to an unknown channel id is a 401 without a signature.)
    local header_of='BEGIN{IGNORECASE=1} tolower($1)==tolower(name)":" {sub(/\r$/,"",$2); print $2}'
    local r_timestamp r_nonce r_signature
    r_timestamp=$(awk -v name=Yibao-Timestamp "$header_of" "$WORK/headers")
    r_nonce=$(awk -v name=Yibao-Nonce "$header_of" "$WORK/headers")
    r_signature=$(awk -v name=Yibao-Signature "$header_of" "$WORK/headers")
    if [ -z "$r_signature" ] && [ "$status" = 401 ]; then
        :
    elif [ "$(sign "$status" "$path" "$r_timestamp" "$r_nonce" "$(sha256_hex "$WORK/answer")")" != "$r_signature" ]; then
        echo "response signature wrong or missing for $path: do not trust it" >&2
        exit 1
    fi
    echo "== $method $path: HTTP $status"
    cat "$WORK/answer"
    echo
    if [ "$status" -ge 400 ]; then
        exit 1 # the body's "code" says what went wrong: docs/integrator-guide.md, "Error codes"
    fi
}

check_test_vector

# 1. Search payables (no name: the person's name comes back masked).
printf '{"id_number":"%s"}' "$ID_NUMBER" >"$WORK/search.json"
call POST /channel/v1/payables/search "$WORK/search.json"

# 2. Refunds owed through this channel.
call GET '/channel/v1/refunds?status=pending'

# 3. Yesterday's statement (China Standard Time; TZ=UTC-8 is POSIX for UTC+8), with no transactions.
yesterday=$(TZ=UTC-8 date -d yesterday +%F 2>/dev/null || TZ=UTC-8 date -v-1d +%F)
printf 'channel_txn_id,type,amount,occurred_at,refund_no\n' >"$WORK/statement.csv"
call PUT "/channel/v1/statements/$yesterday" "$WORK/statement.csv" text/csv
echo OK
