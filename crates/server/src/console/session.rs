//! Signing in and out, sessions and CSRF tokens.
//!
//! A person signs in with their token; the server stores a session (the
//! SHA-256 of a random cookie value, the person, a CSRF token, an expiry)
//! and sets the cookie `HttpOnly; SameSite=Strict` (and `Secure` when the
//! request came over TLS). Every state change carries the session's CSRF
//! token in its form. Agents' tokens cannot sign in. Sign-out ends the
//! session in the store, so it ends on every replica.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use warden_evidence::{Record, RecordKind};
use warden_model::Credentials;
use warden_store::SessionRow;

use super::layout::{self, Page};
use crate::AppState;
use crate::auth::{Kind, Principal, Principals};

/// The session cookie.
pub(crate) const COOKIE: &str = "warden_session";
/// The cookie that binds the sign-in form to the browser that loaded it.
const SIGN_IN_COOKIE: &str = "warden_sign_in";
/// How long a session lasts.
pub(crate) const SESSION_TTL_S: i64 = 8 * 3600;

/// A signed-in person: who, and the CSRF token of their session.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    /// The person, with the roles the pack in force gives them.
    pub principal: Principal,
    /// The token every form must carry.
    pub csrf: String,
}

impl Viewer {
    /// The person's id.
    pub fn id(&self) -> &str {
        &self.principal.id
    }

    /// Whether the person has one of `roles`.
    pub fn has(&self, roles: &[warden_model::Role]) -> bool {
        self.principal.require(roles).is_ok()
    }

    /// Refuses (403, recorded as evidence) a state change whose form does
    /// not carry this session's CSRF token.
    pub async fn check_csrf(&self, s: &AppState, given: &str, path: &str) -> Result<(), Response> {
        if !given.is_empty() && constant_time_eq(given.as_bytes(), self.csrf.as_bytes()) {
            return Ok(());
        }
        let mut r = Record::new(RecordKind::AccessDenied);
        r.code = Some("csrf".into());
        r.message = Some(format!(
            "console: `{}` sent a state change without its session's CSRF token to {path}",
            self.id()
        ));
        r.detail = Some(serde_json::json!({ "path": path, "person": self.id(), "reason": "csrf" }));
        if let Err(e) = s.log.append(r).await {
            tracing::error!(error = %e, "cannot record a refused console request");
        }
        Err(layout::error_page(
            s,
            Some(self),
            StatusCode::FORBIDDEN,
            "This form is out of date or did not come from the console (its CSRF token is missing \
             or wrong). Reload the page and try again.",
        ))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 32 random bytes, hex.
pub(crate) fn random_token() -> Option<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).ok()?;
    Some(hex::encode(b))
}

/// The value of cookie `name` in `headers`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the request reached Warden over TLS (directly or through a
/// proxy that says so).
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn set_cookie(name: &str, value: &str, max_age_s: i64, path: &str, tls: bool) -> HeaderValue {
    let secure = if tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age_s}; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Why there is no viewer: the page asks to sign in.
pub(crate) struct SignInFirst {
    get: bool,
    next: String,
}

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        if self.get {
            let next = if self.next.starts_with("/console") && !self.next.starts_with("//") {
                self.next
            } else {
                "/console".into()
            };
            let to = format!("/console/sign-in?next={}", layout::encode(&next));
            Redirect::to(&to).into_response()
        } else {
            (
                StatusCode::UNAUTHORIZED,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                layout::bare(
                    "Signed out",
                    html! {
                        p role="alert" { "Your session has ended. " a href="/console/sign-in" { "Sign in again" } "." }
                    },
                ),
            )
                .into_response()
        }
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = SignInFirst;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, SignInFirst> {
        let refuse = || SignInFirst {
            get: parts.method == axum::http::Method::GET,
            next: parts
                .uri
                .path_and_query()
                .map_or("/console".into(), |p| p.as_str().to_owned()),
        };
        let Some(value) = cookie(&parts.headers, COOKIE) else {
            return Err(refuse());
        };
        let row = match s.store.session(&Credentials::hash_token(value)).await {
            Ok(Some(r)) => r,
            Ok(None) => return Err(refuse()),
            Err(e) => {
                tracing::error!(error = %e, "cannot read a console session");
                return Err(refuse());
            }
        };
        if row.ended_us.is_some() || row.expires_us <= layout::now_us() {
            return Err(refuse());
        }
        // Roles come from the pack in force; a person it no longer names
        // is signed out.
        let engine = s.engine.current();
        let Some(principal) = Principals::person(engine.pack(), &row.person) else {
            return Err(refuse());
        };
        Ok(Viewer {
            principal,
            csrf: row.csrf,
        })
    }
}

/// Query of the sign-in page.
#[derive(Debug, Deserialize)]
pub(crate) struct NextParam {
    next: Option<String>,
}

/// `GET /console/sign-in`.
pub(crate) async fn sign_in_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<axum::extract::Query<NextParam>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let next = q.ok().and_then(|q| q.0.next).unwrap_or_default();
    sign_in_form(&s, &headers, &next, None, StatusCode::OK)
}

fn sign_in_form(
    s: &AppState,
    headers: &HeaderMap,
    next: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let Some(binding) = random_token() else {
        return layout::error_page(
            s,
            None,
            StatusCode::SERVICE_UNAVAILABLE,
            "no randomness available",
        );
    };
    let body = html! {
        section.sign-in aria-labelledby="sign-in-title" {
            h1 #sign-in-title { "Sign in to Warden" }
            p { "Use the token your Warden administrator gave you. The example packs' tokens are "
                code { "demo-<name>" } " (for instance " code { "demo-dave" } ")." }
            @if let Some(e) = error {
                p.error role="alert" #sign-in-error { (e) }
            }
            form method="post" action="/console/sign-in" {
                input type="hidden" name="binding" value=(binding);
                input type="hidden" name="next" value=(next);
                label for="token" { "Token" }
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                button type="submit" { "Sign in" }
            }
        }
    };
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        layout::bare("Sign in", body),
    )
        .into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            SIGN_IN_COOKIE,
            &binding,
            600,
            "/console/sign-in",
            over_tls(headers),
        ),
    );
    resp
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub(crate) struct SignInForm {
    token: String,
    #[serde(default)]
    binding: String,
    #[serde(default)]
    next: String,
}

/// `POST /console/sign-in`.
pub(crate) async fn sign_in(
    State(s): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return sign_in_form(
            &s,
            &headers,
            "",
            Some("Enter your token."),
            StatusCode::BAD_REQUEST,
        );
    };
    let bound = cookie(&headers, SIGN_IN_COOKIE).is_some_and(|c| {
        !f.binding.is_empty() && constant_time_eq(c.as_bytes(), f.binding.as_bytes())
    });
    if !bound {
        return sign_in_form(
            &s,
            &headers,
            &f.next,
            Some("This sign-in form expired or did not come from this browser; try again."),
            StatusCode::FORBIDDEN,
        );
    }
    let found = s.principals().find(f.token.trim()).cloned();
    let person = match found {
        Some(p) if p.kind == Kind::Person => p,
        other => {
            let agent = other.as_ref().map(|p| p.id.clone());
            let reason = if agent.is_some() {
                "an agent's token cannot sign in to the console"
            } else {
                "unknown token"
            };
            let mut r = Record::new(RecordKind::AccessDenied);
            r.code = Some("unauthenticated".into());
            r.agent.clone_from(&agent);
            r.message = Some(format!("console sign-in refused: {reason}"));
            r.detail = Some(serde_json::json!({
                "path": "/console/sign-in",
                "reason": reason,
            }));
            if let Err(e) = s.log.append(r).await {
                tracing::error!(error = %e, "cannot record a refused sign-in");
            }
            let msg = if agent.is_some() {
                "That is an agent's token. Agents cannot sign in to the console; people sign in \
                 with their own token."
            } else {
                "Unknown token."
            };
            return sign_in_form(&s, &headers, &f.next, Some(msg), StatusCode::UNAUTHORIZED);
        }
    };
    let (Some(value), Some(csrf)) = (random_token(), random_token()) else {
        return layout::error_page(
            &s,
            None,
            StatusCode::SERVICE_UNAVAILABLE,
            "no randomness available",
        );
    };
    let now = layout::now_us();
    let row = SessionRow {
        id_hash: Credentials::hash_token(&value),
        person: person.id.clone(),
        csrf,
        created_us: now,
        expires_us: now + SESSION_TTL_S * 1_000_000,
        ended_us: None,
    };
    if let Err(e) = s.store.create_session(&row).await {
        tracing::error!(error = %e, "cannot store a console session");
        return layout::error_page(
            &s,
            None,
            StatusCode::SERVICE_UNAVAILABLE,
            "The session could not be stored; try again.",
        );
    }
    let next = if f.next.starts_with("/console") && !f.next.starts_with("//") {
        f.next
    } else {
        "/console".into()
    };
    let tls = over_tls(&headers);
    let mut resp = Redirect::to(&next).into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(COOKIE, &value, SESSION_TTL_S, "/console", tls),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(SIGN_IN_COOKIE, "", 0, "/console/sign-in", tls),
    );
    resp
}

/// The sign-out form.
#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /console/sign-out`: ends the session in the store.
pub(crate) async fn sign_out(
    State(s): State<AppState>,
    v: Viewer,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let given = form.map(|f| f.0.csrf).unwrap_or_default();
    if let Err(r) = v.check_csrf(&s, &given, "/console/sign-out").await {
        return r;
    }
    if let Some(value) = cookie(&headers, COOKIE)
        && let Err(e) = s
            .store
            .end_session(&Credentials::hash_token(value), layout::now_us())
            .await
    {
        tracing::error!(error = %e, "cannot end a console session");
        return layout::error_page(
            &s,
            Some(&v),
            StatusCode::SERVICE_UNAVAILABLE,
            "The session could not be ended; try again.",
        );
    }
    let mut resp = Redirect::to("/console/sign-in").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(COOKIE, "", 0, "/console", over_tls(&headers)),
    );
    resp
}

/// Renders `page` for `v`.
pub(crate) fn render(s: &AppState, v: &Viewer, page: Page) -> Response {
    layout::page(s, Some(v), page)
}
