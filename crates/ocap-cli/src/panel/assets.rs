//! The page's files, compiled into the binary (`include_str!` of `assets/`): plain HTML, CSS
//! and JavaScript without a build step, so the panel needs no Node at run time and loads
//! nothing from elsewhere (its Content-Security-Policy allows only itself).
//!
//! A new page is a section in `index.html` and a render function in `panel.js`; a new file
//! is a line in `FILES`.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

const INDEX_HTML: &str = include_str!("assets/index.html");

/// The files under `/assets/`: name, content type, contents.
const FILES: &[(&str, &str, &str)] = &[
    ("panel.css", "text/css; charset=utf-8", include_str!("assets/panel.css")),
    ("panel.js", "text/javascript; charset=utf-8", include_str!("assets/panel.js")),
];

/// `GET /`: the page.
pub async fn index() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX_HTML).into_response()
}

/// `GET /assets/{file}`.
pub async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => ([(header::CONTENT_TYPE, *content_type)], *body).into_response(),
        None => (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "404 Not Found\n")
            .into_response(),
    }
}
