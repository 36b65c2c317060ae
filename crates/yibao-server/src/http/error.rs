//! Errors over HTTP, in this one place: each [`ErrorCode`]'s status and the JSON error body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ErrorCode, ServiceError};

impl ErrorCode {
    /// The HTTP status a code is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorCode::InvalidIdNumber
            | ErrorCode::InvalidName
            | ErrorCode::InvalidAmount
            | ErrorCode::InvalidRegion
            | ErrorCode::InvalidFeeYear
            | ErrorCode::InvalidCalendar => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidPerson | ErrorCode::InvalidInsuredNumber => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ErrorCode::BadRosterFile => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::BadRosterHeader => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::BadStatementFile => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::BadDebitFile => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::DebitDateNotReached => StatusCode::CONFLICT,
            ErrorCode::NoFeePolicy => StatusCode::NOT_FOUND,
            ErrorCode::NotEnrolled => StatusCode::CONFLICT,
            ErrorCode::NotAssessed => StatusCode::CONFLICT,
            ErrorCode::PaidMustBeRefunded => StatusCode::CONFLICT,
            ErrorCode::Locked => StatusCode::CONFLICT,
            ErrorCode::AlreadyExists => StatusCode::CONFLICT,
            ErrorCode::AuthRequired => StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ErrorCode::LoginThrottled => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::AuthFailed => StatusCode::UNAUTHORIZED,
            ErrorCode::Replayed => StatusCode::UNAUTHORIZED,
            ErrorCode::RegionNotAllowed | ErrorCode::AgentNotAllowed => StatusCode::FORBIDDEN,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::IdempotencyConflict => StatusCode::CONFLICT,
            ErrorCode::AlreadyPaid => StatusCode::CONFLICT,
            ErrorCode::AmountMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::NotPayable => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::WindowClosed => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::BackPaymentRefused
            | ErrorCode::YearClosed
            | ErrorCode::ChannelNotAllowed
            | ErrorCode::WaitPastYearEnd
            | ErrorCode::NotBound
            | ErrorCode::RelationshipNotAllowed
            | ErrorCode::OutsideProvince
            | ErrorCode::BackPaymentNotAllowed
            | ErrorCode::InsufficientBalance
            | ErrorCode::NotHouseholdMember => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Reversed => StatusCode::CONFLICT,
            ErrorCode::ReversalClosed => StatusCode::CONFLICT,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::ReceiptGlyphMissing => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable code, e.g. `INVALID_ID_NUMBER`.
    pub code: String,
    /// What a teller or citizen can read and act on.
    pub message: String,
    /// The same value as the `Yibao-Request-Id` header.
    pub request_id: String,
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        // The body is written by `request_id::render_errors`, which knows the request id.
        let mut response = self.code.status().into_response();
        response.extensions_mut().insert(self);
        response
    }
}
