//! The console: server-rendered pages for approvers, operators and
//! auditors, served by `warden serve` from the one binary (the stylesheet
//! and the one small script are embedded). People sign in with their
//! token; pages show only what their roles and groups allow, and every
//! change goes through the `/v1` handler that does the same for the API,
//! so the rules and the evidence are the API's.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | redirects to `/console` |
//! | `GET/POST /console/sign-in`, `POST /console/sign-out` | sessions |
//! | `GET /console` | the approvals inbox, most urgent first, live |
//! | `GET /console/approvals/{id}`, `POST …/decision` | a request; approve or deny |
//! | `GET /console/history` | decided requests |
//! | `GET /console/runs`, `GET /console/runs/{id}` | runs and their timelines |
//! | `GET /console/audit`, `/console/audit/{seq}`, `/console/audit/export.jsonl` | audit search, a record with its proof |
//! | `GET /console/incidents`, `POST /console/incidents/{id}` | incidents; acknowledge, resolve |
//! | `GET /console/controls`, `GET/POST /console/controls/{agents\|tools}/{id}/{op}` | pause, resume, quarantine, release, circuits |
//! | `GET /console/views` | charts |
//! | `GET /console/events` | server-sent events: the log grew |
//!
//! Agents control strings shown here (arguments, reasons, results): maud
//! escapes every value, and the Content-Security-Policy allows no inline
//! script and no script from elsewhere.

mod audit;
mod events;
mod inbox;
mod layout;
pub(crate) use layout::now_us;
mod ops;
mod runs;
mod session;
mod views;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::AppState;

/// The Content-Security-Policy of every console response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const APP_CSS: &str = include_str!("assets/app.css");
const APP_JS: &str = include_str!("assets/app.js");

/// The console's routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(inbox::inbox))
        .route(
            "/console/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/console/sign-out", post(session::sign_out))
        .route("/console/approvals/{id}", get(inbox::request))
        .route("/console/approvals/{id}/decision", post(inbox::decide))
        .route("/console/history", get(inbox::history))
        .route("/console/runs", get(runs::list))
        .route("/console/runs/{id}", get(runs::show))
        .route("/console/audit", get(audit::search))
        .route("/console/audit/export.jsonl", get(audit::export))
        .route("/console/audit/{seq}", get(audit::record))
        .route("/console/incidents", get(ops::incidents))
        .route("/console/incidents/{id}", post(ops::incident_answer))
        .route("/console/controls", get(ops::controls))
        .route(
            "/console/controls/{target}/{id}/{op}",
            get(ops::confirm).post(ops::change),
        )
        .route("/console/views", get(views::views))
        .route("/console/events", get(events::stream))
        .route("/console/assets/{file}", get(asset))
        .layer(axum::middleware::from_fn(headers))
}

/// The embedded stylesheet and script.
async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// Security headers on every console response; pages are never cached.
async fn headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let asset = req.uri().path().starts_with("/console/assets/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !asset {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}
