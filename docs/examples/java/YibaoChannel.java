// A yibao channel, end to end, with nothing but the Java 17 standard library.
//
// Usage (Java 11 or newer runs a single source file directly; no build step). Run it in a UTF-8
// locale (LANG=C.UTF-8 or similar): Java 17 decodes the NAME argument and prints with the locale's
// encoding.
//     java YibaoChannel.java BASE_URL CHANNEL_ID SECRET ID_NUMBER NAME
//
// With `yibao demo` running, its printout gives all five, for example:
//     java YibaoChannel.java http://127.0.0.1:8080 wechat demo-secret-wechat-pay-000 \
//         320602202606100002 史桂春
//
// The same steps as the Python example (docs/integrator-guide.md explains each): check signing
// against the guide's test vector, search, open an order (twice: same order), report the payment
// (twice: same answer), ask its status, search receipts, reverse it (so the example can run again),
// list refunds owed. Every response signature is verified.

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public class YibaoChannel {

    // --- Signing (docs/integrator-guide.md, "Signing") ------------------------------------------

    /** METHOD (or STATUS) \n PATH_AND_QUERY \n TIMESTAMP \n NONCE \n hex(SHA-256(body)) \n */
    static String stringToSign(String first, String pathAndQuery, String timestamp, String nonce, byte[] body)
            throws Exception {
        String bodyHash = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(body));
        return first + "\n" + pathAndQuery + "\n" + timestamp + "\n" + nonce + "\n" + bodyHash + "\n";
    }

    /** Lowercase hex of HMAC-SHA256(secret, text). */
    static String sign(byte[] secret, String text) throws Exception {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(secret, "HmacSHA256"));
        return HexFormat.of().formatHex(mac.doFinal(text.getBytes(StandardCharsets.UTF_8)));
    }

    static final SecureRandom RANDOM = new SecureRandom();

    /** 32 characters of [0-9a-f]: within the protocol's 16 to 64 of [A-Za-z0-9]. */
    static String newNonce() {
        byte[] bytes = new byte[16];
        RANDOM.nextBytes(bytes);
        return HexFormat.of().formatHex(bytes);
    }

    /** The guide's request vector 1: if this fails, nothing else can work. Non-ASCII text in this file
     *  is written as Unicode escapes (the name is 张三), so the result does not depend on the encoding
     *  javac assumes for the source file. */
    static void checkTestVector() throws Exception {
        String text = stringToSign("POST", "/channel/v1/payables/search", "1604283300",
                "AbCdEfGh0123456789IjKlMnOpQrStUv",
                "{\"id_number\":\"11010519491231002X\",\"name\":\"\u5f20\u4e09\"}".getBytes(StandardCharsets.UTF_8));
        String expected = "4ec8a7ff704830c27e0934c3c77c6a0a61ad87e324da64b01ed9ff0400887e1e";
        String actual = sign("yibao-test-secret-0001".getBytes(StandardCharsets.UTF_8), text);
        if (!actual.equals(expected)) {
            throw new IllegalStateException("signing does not match the guide's test vector: " + actual);
        }
    }

    // --- One signed call --------------------------------------------------------------------------

    /** An error answer: HTTP status and the body's stable code and Chinese message. */
    static class ChannelError extends Exception {
        final int status;
        final String code;

        ChannelError(int status, Map<String, Object> body) {
            super(status + " " + body.get("code") + ": " + body.get("message")
                    + " (request_id " + body.get("request_id") + ")");
            this.status = status;
            this.code = (String) body.get("code");
        }
    }

    record Answer(int status, Object body) {
        @SuppressWarnings("unchecked")
        Map<String, Object> object() {
            return (Map<String, Object>) body;
        }
    }

    final String baseUrl;
    final String channelId;
    final byte[] secret;
    // HTTP/1.1: the signature covers the exact bytes, and there is nothing to gain from h2c here.
    final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10)).build();

    YibaoChannel(String baseUrl, String channelId, String secret) {
        this.baseUrl = baseUrl.replaceAll("/+$", "");
        this.channelId = channelId;
        this.secret = secret.getBytes(StandardCharsets.UTF_8);
    }

    /** Signs and sends one request, verifies the response signature, returns the decoded answer. */
    Answer call(String method, String pathAndQuery, Object payload) throws Exception {
        // Sign exactly the bytes that are sent: serialise once, then hash and send those bytes.
        byte[] body = payload == null ? new byte[0] : Json.write(payload).getBytes(StandardCharsets.UTF_8);
        String timestamp = Long.toString(System.currentTimeMillis() / 1000);
        String nonce = newNonce();
        String signature = sign(secret, stringToSign(method, pathAndQuery, timestamp, nonce, body));
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(baseUrl + pathAndQuery))
                .timeout(Duration.ofSeconds(30))
                .header("Yibao-Channel", channelId)
                .header("Yibao-Timestamp", timestamp)
                .header("Yibao-Nonce", nonce)
                .header("Yibao-Signature", signature);
        if (body.length > 0) {
            request.header("Content-Type", "application/json");
        }
        request.method(method, body.length > 0
                ? HttpRequest.BodyPublishers.ofByteArray(body) : HttpRequest.BodyPublishers.noBody());
        HttpResponse<byte[]> response = http.send(request.build(), HttpResponse.BodyHandlers.ofByteArray());
        verify(response, pathAndQuery);
        String text = new String(response.body(), StandardCharsets.UTF_8);
        Object decoded = text.isEmpty() ? new LinkedHashMap<String, Object>() : Json.read(text);
        Answer answer = new Answer(response.statusCode(), decoded);
        if (answer.status() >= 400) {
            throw new ChannelError(answer.status(), answer.object());
        }
        return answer;
    }

    /** A response is yibao's only if its signature checks out. An error answer to a request whose
     *  channel id is unknown cannot be signed (yibao has no secret to sign with): it carries none. */
    void verify(HttpResponse<byte[]> response, String pathAndQuery) throws Exception {
        var headers = response.headers();
        var signature = headers.firstValue("Yibao-Signature");
        if (signature.isEmpty() && response.statusCode() == 401) {
            return;
        }
        String text = stringToSign(Integer.toString(response.statusCode()), pathAndQuery,
                headers.firstValue("Yibao-Timestamp").orElse(""),
                headers.firstValue("Yibao-Nonce").orElse(""), response.body());
        if (signature.isEmpty() || !MessageDigest.isEqual(
                sign(secret, text).getBytes(StandardCharsets.US_ASCII),
                signature.get().getBytes(StandardCharsets.US_ASCII))) {
            throw new IllegalStateException("response signature wrong or missing for " + pathAndQuery
                    + ": do not trust it");
        }
    }

    static void show(String step, Answer answer) {
        System.out.println("== " + step + ": HTTP " + answer.status());
        System.out.println(Json.write(answer.body()));
    }

    static void check(boolean condition, Object what) {
        if (!condition) {
            throw new IllegalStateException("unexpected: " + what);
        }
    }

    @SuppressWarnings("unchecked")
    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: java YibaoChannel.java BASE_URL CHANNEL_ID SECRET ID_NUMBER NAME");
            System.exit(2);
        }
        String idNumber = args[3];
        String name = args[4];
        checkTestVector();
        YibaoChannel channel = new YibaoChannel(args[0], args[1], args[2]);

        // 1. Search. With the name, the answer is refused (404) unless it matches the agency's record.
        Answer found = channel.call("POST", "/channel/v1/payables/search",
                Map.of("id_number", idNumber, "name", name));
        show("search", found);
        Map<String, Object> payable = null;
        for (Object p : (List<Object>) found.object().get("payables")) {
            if ("unpaid".equals(((Map<String, Object>) p).get("status"))) {
                payable = (Map<String, Object>) p;
                break;
            }
        }
        if (payable == null) {
            System.err.println("nothing unpaid for this person (paid, exempt, or held by an open order)");
            System.exit(1);
        }

        // 2. Open an order. Our own order number is the idempotency key: sending it again is safe.
        Map<String, Object> orderRequest = new LinkedHashMap<>();
        orderRequest.put("channel_order_no", "JV" + newNonce().substring(0, 16));
        orderRequest.put("payable_ids", List.of(payable.get("payable_id")));
        orderRequest.put("amount", payable.get("amount"));
        orderRequest.put("payer", Map.of("name", name));
        Answer order = channel.call("POST", "/channel/v1/orders", orderRequest);
        show("order", order); // 201 Created
        Answer again = channel.call("POST", "/channel/v1/orders", orderRequest);
        check(again.status() == 200 && again.object().get("order_no").equals(order.object().get("order_no")),
                again.body());

        // 3. The citizen pays; report it. Our transaction id is the idempotency key: after a timeout,
        //    send the very same report again and you get the very same answer.
        String paidAt = OffsetDateTime.now(ZoneOffset.ofHours(8)).truncatedTo(ChronoUnit.SECONDS)
                .format(DateTimeFormatter.ISO_OFFSET_DATE_TIME);
        String txnId = "JVT" + newNonce().substring(0, 16);
        Map<String, Object> payment = new LinkedHashMap<>();
        payment.put("channel_txn_id", txnId);
        payment.put("order_no", order.object().get("order_no"));
        payment.put("amount", order.object().get("amount"));
        payment.put("paid_at", paidAt);
        Answer report = channel.call("POST", "/channel/v1/payments", payment);
        show("payment", report);
        Answer repeated = channel.call("POST", "/channel/v1/payments", payment);
        check(repeated.body().equals(report.body()), repeated.body());

        // 4. Status: what a channel asks when it does not know whether its report arrived.
        show("payment status", channel.call("GET", "/channel/v1/payments/" + txnId, null));

        // 5. Receipts of the person (the name is required here).
        try {
            show("receipts", channel.call("POST", "/channel/v1/receipts/search",
                    Map.of("id_number", idNumber, "name", name)));
        } catch (ChannelError e) {
            System.out.println("== receipts: " + e.getMessage());
        }

        // 6. Reverse (冲正): the debit did not complete after all. Idempotent.
        show("reversal", channel.call("POST", "/channel/v1/payments/" + txnId + "/reversal",
                Map.of("reason", "\u793a\u4f8b\uff1a\u51b2\u6b63")));

        // 7. Refunds owed through this channel: pay each back, then report its result.
        show("refunds owed", channel.call("GET", "/channel/v1/refunds?status=pending", null));

        // An error answer, for the record: the same transaction id with another amount.
        Map<String, Object> conflicting = new LinkedHashMap<>(payment);
        conflicting.put("amount", ((Long) payment.get("amount")) + 1);
        try {
            channel.call("POST", "/channel/v1/payments", conflicting);
            check(false, "a conflicting repeat was accepted");
        } catch (ChannelError e) {
            System.out.println("== conflicting repeat: " + e.getMessage());
            check("IDEMPOTENCY_CONFLICT".equals(e.code), e.code);
        }
        System.out.println("OK");
    }

    // --- A minimal JSON reader and writer (the standard library has none) --------------------------
    // Objects become LinkedHashMap, arrays ArrayList, integers Long (amounts are integer fen: never a
    // double), strings String, true/false Boolean, null null.

    static final class Json {
        private final String s;
        private int i;

        private Json(String s) {
            this.s = s;
        }

        static Object read(String text) {
            Json p = new Json(text);
            Object value = p.value();
            p.space();
            if (p.i != p.s.length()) {
                throw new IllegalArgumentException("trailing characters in JSON at " + p.i);
            }
            return value;
        }

        private void space() {
            while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
                i++;
            }
        }

        private Object value() {
            space();
            char c = s.charAt(i);
            if (c == '{') {
                Map<String, Object> map = new LinkedHashMap<>();
                i++;
                space();
                if (s.charAt(i) == '}') {
                    i++;
                    return map;
                }
                while (true) {
                    space();
                    String key = string();
                    space();
                    expect(':');
                    map.put(key, value());
                    space();
                    if (s.charAt(i) == ',') {
                        i++;
                    } else {
                        expect('}');
                        return map;
                    }
                }
            }
            if (c == '[') {
                List<Object> list = new ArrayList<>();
                i++;
                space();
                if (s.charAt(i) == ']') {
                    i++;
                    return list;
                }
                while (true) {
                    list.add(value());
                    space();
                    if (s.charAt(i) == ',') {
                        i++;
                    } else {
                        expect(']');
                        return list;
                    }
                }
            }
            if (c == '"') {
                return string();
            }
            if (s.startsWith("true", i)) {
                i += 4;
                return Boolean.TRUE;
            }
            if (s.startsWith("false", i)) {
                i += 5;
                return Boolean.FALSE;
            }
            if (s.startsWith("null", i)) {
                i += 4;
                return null;
            }
            int start = i;
            while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) {
                i++;
            }
            String number = s.substring(start, i);
            if (number.isEmpty()) {
                throw new IllegalArgumentException("unexpected character in JSON at " + start);
            }
            // yibao sends integers only (fen, years); anything else is not a number we expect.
            return Long.parseLong(number);
        }

        private void expect(char c) {
            if (s.charAt(i) != c) {
                throw new IllegalArgumentException("expected '" + c + "' in JSON at " + i);
            }
            i++;
        }

        private String string() {
            expect('"');
            StringBuilder out = new StringBuilder();
            while (true) {
                char c = s.charAt(i++);
                if (c == '"') {
                    return out.toString();
                }
                if (c != '\\') {
                    out.append(c);
                    continue;
                }
                char e = s.charAt(i++);
                switch (e) {
                    case 'n' -> out.append('\n');
                    case 't' -> out.append('\t');
                    case 'r' -> out.append('\r');
                    case 'b' -> out.append('\b');
                    case 'f' -> out.append('\f');
                    case 'u' -> {
                        out.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                        i += 4;
                    }
                    default -> out.append(e); // \" \\ \/
                }
            }
        }

        @SuppressWarnings("unchecked")
        static String write(Object value) {
            if (value == null) {
                return "null";
            }
            if (value instanceof String str) {
                StringBuilder out = new StringBuilder("\"");
                for (char c : str.toCharArray()) {
                    switch (c) {
                        case '"' -> out.append("\\\"");
                        case '\\' -> out.append("\\\\");
                        case '\n' -> out.append("\\n");
                        case '\r' -> out.append("\\r");
                        case '\t' -> out.append("\\t");
                        default -> {
                            if (c < 0x20) {
                                out.append(String.format("\\u%04x", (int) c));
                            } else {
                                out.append(c);
                            }
                        }
                    }
                }
                return out.append('"').toString();
            }
            if (value instanceof Map<?, ?> map) {
                StringBuilder out = new StringBuilder("{");
                for (Map.Entry<?, ?> e : map.entrySet()) {
                    if (out.length() > 1) {
                        out.append(',');
                    }
                    out.append(write(e.getKey().toString())).append(':').append(write(e.getValue()));
                }
                return out.append('}').toString();
            }
            if (value instanceof List<?> list) {
                StringBuilder out = new StringBuilder("[");
                for (Object item : list) {
                    if (out.length() > 1) {
                        out.append(',');
                    }
                    out.append(write(item));
                }
                return out.append(']').toString();
            }
            return value.toString(); // Long, Integer, Boolean
        }
    }
}
