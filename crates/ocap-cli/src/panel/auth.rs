//! Who may use the panel, as Jupyter does it: the daemon makes a secret token (256 bits from
//! the OS RNG) and puts it in the URL it prints. The first request with `?token=` gets a
//! cookie and a redirect to the same URL without the token (so it leaves the address bar and
//! the history); every other request needs that cookie or `Authorization: Bearer <token>`,
//! else 401.
//!
//! Against cross-site requests: the cookie is `SameSite=Strict` and `HttpOnly`, no CORS
//! header is ever sent, and a state-changing request (anything but GET and HEAD) must carry
//! `X-Ocap-Panel: 1`, a header a cross-site form cannot send and a cross-site `fetch` cannot
//! send without a CORS preflight we never grant (403 without it). Tokens are compared in
//! constant time.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

/// The header a state-changing request must carry (with the value `1`).
pub const PANEL_HEADER: &str = "x-ocap-panel";
/// Bytes of randomness in a token (256 bits; printed as 64 hex digits).
const TOKEN_BYTES: usize = 32;

/// The panel's secret, and the name of the cookie that carries it.
pub struct Token {
    hex: String,
    /// `ocap_panel_<port>`: cookies are not per port, so two panels on one host (two homes)
    /// would otherwise overwrite each other's.
    cookie_name: String,
}

impl Token {
    /// A fresh token from the OS RNG, for the panel on `port`.
    pub fn generate(port: u16) -> Result<Token, getrandom::Error> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes)?;
        let hex = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Token { hex, cookie_name: format!("ocap_panel_{port}") })
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Whether `given` is the token, in time that does not depend on where they differ.
    fn matches(&self, given: &str) -> bool {
        bool::from(self.hex.as_bytes().ct_eq(given.as_bytes()))
    }

    /// The `Set-Cookie` value. No `Secure`: the panel speaks plain HTTP on loopback, where
    /// browsers treat the origin as secure anyway.
    fn set_cookie(&self) -> String {
        format!("{}={}; Path=/; HttpOnly; SameSite=Strict", self.cookie_name, self.hex)
    }

    /// Whether the request carries the token in our cookie or as a bearer token.
    fn authorizes(&self, headers: &HeaderMap) -> bool {
        let bearer = headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.strip_prefix("Bearer "))
            .any(|t| self.matches(t.trim()));
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .any(|(name, value)| name == self.cookie_name && self.matches(value));
        bearer || cookie
    }
}

/// Splits `token=…` out of a query string: the token given (if any) and the rest.
fn take_token(query: &str) -> (Option<&str>, String) {
    let mut token = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("token=") {
            Some(t) => token = Some(t),
            None => rest.push(pair),
        }
    }
    (token, rest.join("&"))
}

fn refuse(status: StatusCode, why: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], why).into_response()
}

/// Every request passes here first: the token exchange, the cookie or bearer check, the
/// custom header on state-changing requests; then the headers every answer carries.
pub async fn guard(State(token): State<Arc<Token>>, req: Request, next: Next) -> Response {
    let mut response = check(&token, req, next).await;
    let headers = response.headers_mut();
    for (name, value) in [
        // Pages and answers hold kernel state: never cached, never framed, never sniffed.
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn check(token: &Token, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    if let (true, Some(query)) = (safe, req.uri().query()) {
        if let (Some(given), rest) = take_token(query) {
            if !token.matches(given) {
                tracing::info!(path = req.uri().path(), "panel: refused a wrong token");
                return refuse(StatusCode::UNAUTHORIZED, "401 Unauthorized: this token is not the panel's.\n");
            }
            let path = req.uri().path();
            let location = if rest.is_empty() { path.to_owned() } else { format!("{path}?{rest}") };
            let headers = [(header::LOCATION, location), (header::SET_COOKIE, token.set_cookie())];
            return (StatusCode::SEE_OTHER, headers).into_response();
        }
    }
    if !token.authorizes(req.headers()) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "401 Unauthorized: open the panel with the URL `ocap panel` prints (it carries the token).\n",
        );
    }
    if !safe && req.headers().get(PANEL_HEADER).map(HeaderValue::as_bytes) != Some(b"1") {
        return refuse(
            StatusCode::FORBIDDEN,
            "403 Forbidden: a state-changing request needs the header X-Ocap-Panel: 1.\n",
        );
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_hex_and_distinct() {
        let (a, b) = (Token::generate(1).expect("rng"), Token::generate(1).expect("rng"));
        assert_eq!(a.hex().len(), 2 * TOKEN_BYTES);
        assert!(a.hex().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.hex(), b.hex());
        assert!(a.matches(a.hex()) && !a.matches(b.hex()) && !a.matches(""));
    }

    #[test]
    fn the_token_is_taken_out_of_the_query() {
        assert_eq!(take_token("token=abc"), (Some("abc"), String::new()));
        assert_eq!(take_token("a=1&token=abc&b=2"), (Some("abc"), "a=1&b=2".to_owned()));
        assert_eq!(take_token("a=1"), (None, "a=1".to_owned()));
    }

    #[test]
    fn the_cookie_or_a_bearer_token_authorizes() {
        let t = Token::generate(8080).expect("rng");
        let mut h = HeaderMap::new();
        assert!(!t.authorizes(&h));
        h.insert(header::COOKIE, HeaderValue::from_str(&format!("x=1; ocap_panel_8080={}", t.hex())).expect("ascii"));
        assert!(t.authorizes(&h));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(&format!("ocap_panel_9090={}", t.hex())).expect("ascii"));
        assert!(!t.authorizes(&h), "another port's cookie");
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {}", t.hex())).expect("ascii"));
        assert!(t.authorizes(&h));
    }
}
