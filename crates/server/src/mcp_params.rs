//! `/mcp` requests rmcp would misreport: a `tools/call` whose `arguments`
//! is not a JSON object does not match rmcp's typed request, so rmcp
//! answers "method not found" (-32601). JSON-RPC says invalid params
//! (-32602); this layer answers that, with the request's id, before rmcp.

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::ApiError;

/// Checks `tools/call` params; other requests pass through untouched.
pub(crate) async fn check_params(
    State(body_limit): State<usize>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, body_limit).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: "payload_too_large",
                message: format!("the request body is over {body_limit} bytes"),
            }
            .into_response();
        }
    };
    if let Some(answer) = invalid_params(&bytes) {
        return answer;
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The JSON-RPC error for a `tools/call` whose `arguments` is neither an
/// object nor absent; `None` for anything else (rmcp judges the rest).
fn invalid_params(bytes: &[u8]) -> Option<Response> {
    // Cheap test first: most requests are not tool calls with arguments.
    if !contains(bytes, b"tools/call") {
        return None;
    }
    let msg: Value = serde_json::from_slice(bytes).ok()?;
    if msg.get("method")?.as_str()? != "tools/call" {
        return None;
    }
    let args = msg.get("params")?.get("arguments")?;
    let kind = match args {
        Value::Object(_) | Value::Null => return None,
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
    };
    let body = json!({
        "jsonrpc": "2.0",
        "id": msg.get("id").cloned().unwrap_or(Value::Null),
        "error": {
            "code": -32602,
            "message": format!("invalid params: `arguments` of tools/call must be a JSON object, not {kind}"),
        },
    });
    Some((StatusCode::OK, Json(body)).into_response())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_non_object_arguments_of_tools_call_are_caught() {
        let call = |args: &str| {
            format!(
                r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"t","arguments":{args}}}}}"#
            )
        };
        for bad in ["[1,2]", "\"x\"", "3", "true"] {
            assert!(invalid_params(call(bad).as_bytes()).is_some(), "{bad}");
        }
        for ok in ["{}", "{\"a\":1}", "null"] {
            assert!(invalid_params(call(ok).as_bytes()).is_none(), "{ok}");
        }
        let list = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"arguments":[1]}}"#;
        assert!(invalid_params(list).is_none());
        assert!(invalid_params(b"not json tools/call").is_none());
    }
}
