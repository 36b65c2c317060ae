//! The OpenAPI document served at `/openapi.json`.

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "yibao",
        description = "城乡居民基本医疗保险费征缴平台 (urban-rural resident basic medical insurance contributions). \
            Amounts are integers in fen. Every response carries `Yibao-Request-Id`; every error is \
            `{\"code\", \"message\", \"request_id\"}` with a stable code and a Chinese message. \
            Where a read replica is configured, the staff lists, searches and reports may answer up to \
            `max_replica_lag_seconds` late; send `Yibao-Read: primary` to read what you have just written.",
    ),
    components(schemas(crate::http::error::ErrorBody)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "ops", description = "Health, this document, its explorer (/docs) and the metrics"),
        (name = "tools", description = "Checks for tellers and clerks"),
        (name = "regions", description = "Pooling regions (统筹区), fee policies and working-day calendars"),
        (name = "channel", description = "Channel protocol v1 (shared/spec/channel-protocol.md): every request signed with \
            Yibao-Channel, Yibao-Timestamp, Yibao-Nonce and Yibao-Signature (HMAC-SHA256); responses signed the same way."),
        (name = "settlement", description = "Bank auto-debit agreements and runs (委托扣款), statement reconciliation (对账) in the \
            protocol, WeChat and Alipay formats, refunds, and staff reports (JSON or XLSX)."),
        (name = "public", description = "No authentication: receipt verification and citizens' paid status"),
        (name = "admin", description = "The agency and its service stations: staff, rosters (花名册), persons, assessment (核定), lists. \
            Bearer token from /api/v1/auth/login; station operators reach their own station only."),
    )
)]
struct ApiDoc;

/// The document: its description, tags and security schemes here, and the operations of every
/// route the app serves, taken from the same declarations as the router (`http::Api`).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    served_document().clone()
}

/// The document as `/openapi.json` serves it: built once per process (every route's router and
/// operations), not once per request.
pub fn served_document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(build_document)
}

fn build_document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(super::Api::new().into_openapi());
    add_shared_error_responses(&mut doc);
    apply_security(&mut doc);
    doc
}

/// The channel signature's four headers (each a scheme; a channel operation needs all four
/// together) and the staff session's bearer token.
pub const CHANNEL_SCHEMES: [(&str, &str, &str); 4] = [
    (
        "channel_id",
        "Yibao-Channel",
        "The channel id issued by the operator.",
    ),
    (
        "channel_timestamp",
        "Yibao-Timestamp",
        "Unix seconds, within 300 s of the server's clock.",
    ),
    (
        "channel_nonce",
        "Yibao-Nonce",
        "16 to 64 characters of [A-Za-z0-9], fresh per request (remembered 15 minutes per channel).",
    ),
    (
        "channel_signature",
        "Yibao-Signature",
        "Lowercase hex of HMAC-SHA256(channel secret, METHOD \\n PATH_AND_QUERY \\n TIMESTAMP \\n NONCE \\n \
         hex(SHA-256(body)) \\n). Responses carry Yibao-Timestamp, Yibao-Nonce and Yibao-Signature over \
         STATUS \\n PATH_AND_QUERY \\n TIMESTAMP \\n NONCE \\n hex(SHA-256(body)) \\n. See docs/integrator-guide.md.",
    ),
];

/// The staff session's scheme: `Authorization: Bearer <token from /api/v1/auth/login>`.
pub const STAFF_SCHEME: &str = "staff_bearer";

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = doc.components.get_or_insert_with(Default::default);
        for (name, header, description) in CHANNEL_SCHEMES {
            components.add_security_scheme(
                name,
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                    header,
                    description,
                ))),
            );
        }
        components.add_security_scheme(
            STAFF_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A staff session token from POST /api/v1/auth/login (8 hours).",
                    ))
                    .build(),
            ),
        );
    }
}

/// Sets every operation's security: the channel signature on `/channel/`, the staff bearer token
/// on the staff operations (tags `admin` and `settlement`, but for signing in), and an explicit
/// "none" (an empty requirement) everywhere else, so that no operation is left unsaid.
fn apply_security(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::Operation;
    use utoipa::openapi::security::SecurityRequirement;

    for (path, item) in doc.paths.paths.iter_mut() {
        let operations: [&mut Option<Operation>; 5] = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let staff = path != "/api/v1/auth/login"
                && operation
                    .tags
                    .as_ref()
                    .is_some_and(|tags| tags.iter().any(|t| t == "admin" || t == "settlement"));
            let requirement = if path.starts_with("/channel/") {
                CHANNEL_SCHEMES
                    .iter()
                    .fold(SecurityRequirement::default(), |r, (name, _, _)| {
                        r.add::<_, _, &str>(*name, [])
                    })
            } else if staff {
                SecurityRequirement::new::<_, _, &str>(STAFF_SCHEME, [])
            } else {
                SecurityRequirement::default()
            };
            // Signing out needs no session: without one (or with one already ended) it does nothing.
            operation.security = if path == "/api/v1/auth/logout" {
                Some(vec![SecurityRequirement::default(), requirement])
            } else {
                Some(vec![requirement])
            };
        }
    }
}

/// Documents on every operation the errors that the shared layers answer before or around its
/// handler, where the operation does not already say more about them: the JSON body and parameter
/// extractors, the body limit, staff sessions and channel authentication. Each keeps the one error
/// body; handlers document their own errors on their own operations.
fn add_shared_error_responses(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::Operation;

    for (path, item) in doc.paths.paths.iter_mut() {
        let channel = path.starts_with("/channel/");
        let sign_in_or_out = matches!(path.as_str(), "/api/v1/auth/login" | "/api/v1/auth/logout");
        let operations: [&mut Option<Operation>; 5] = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            // Tags `admin` and `settlement`: behind a staff session, but for signing in and out.
            let staff = !sign_in_or_out
                && operation
                    .tags
                    .as_ref()
                    .is_some_and(|tags| tags.iter().any(|t| t == "admin" || t == "settlement"));
            let body = operation.request_body.as_ref();
            let json_body = body.is_some_and(|b| b.content.contains_key("application/json"));
            let has_parameters = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let mut shared: Vec<(&str, &str)> = Vec::new();
            if has_parameters || body.is_some() || channel {
                shared.push((
                    "400",
                    "`INVALID_REQUEST`: a parameter or the body is malformed (not JSON, a field missing or of the wrong type)",
                ));
            }
            if body.is_some() || channel {
                shared.push(("413", "`PAYLOAD_TOO_LARGE`: the body is over the limit"));
            }
            if json_body {
                shared.push((
                    "415",
                    "`UNSUPPORTED_MEDIA_TYPE`: the body is not sent as `application/json`",
                ));
            }
            if staff
                && ["{region}", "{fee_year}", "{id_number}"]
                    .iter()
                    .any(|p| path.contains(p))
            {
                shared.push((
                    "422",
                    "`INVALID_REGION`, `INVALID_FEE_YEAR` or `INVALID_ID_NUMBER`: a path parameter is refused",
                ));
            }
            if staff {
                shared.push((
                    "401",
                    "`AUTH_REQUIRED`: no valid bearer token (sign in at /api/v1/auth/login)",
                ));
                shared.push((
                    "403",
                    "`FORBIDDEN`: the staff role or station may not do this",
                ));
            }
            if path.starts_with("/public/") {
                shared.push((
                    "429",
                    "`RATE_LIMITED`: the public endpoints together are over their rate",
                ));
            }
            if channel {
                shared.push((
                    "401",
                    "`AUTH_FAILED` (unknown channel, bad signature, clock skew) or `REPLAYED` (nonce reused)",
                ));
                shared.push((
                    "403",
                    "`REGION_NOT_ALLOWED`: the channel is not enabled for the region",
                ));
                shared.push(("429", "`RATE_LIMITED`: over the channel's rate"));
            }
            for (status, description) in shared {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error_response(description));
            }
        }
    }
}

/// An error response: `description` and the shared error body.
fn error_response(
    description: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::response::Response> {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}
