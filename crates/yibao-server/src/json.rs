//! A JSON extractor whose rejections are [`ApiError`]s with Chinese messages.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode};

pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(rejection_to_error(&rejection)),
        }
    }
}

fn rejection_to_error(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::of(ErrorCode::UnsupportedMediaType),
        r if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::of(ErrorCode::PayloadTooLarge)
        }
        JsonRejection::JsonDataError(e) => ApiError::new(
            ErrorCode::InvalidRequest,
            format!("请求字段缺失或类型不对：{}", e.body_text()),
        ),
        JsonRejection::JsonSyntaxError(_) => ApiError::new(
            ErrorCode::InvalidRequest,
            "请求内容不是有效的 JSON，请检查格式",
        ),
        _ => ApiError::of(ErrorCode::InvalidRequest),
    }
}
