//! The stylesheet and the script, compiled into the binary and served
//! under a name carrying a hash of their content (`app-<hash>.css`), so
//! browsers may keep them a year: a new build that changes one changes
//! its name.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use sha2::{Digest, Sha256};

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");

/// One asset: its versioned name, type and content.
struct Asset {
    name: String,
    content_type: &'static str,
    body: &'static str,
}

fn asset(stem: &str, ext: &str, content_type: &'static str, body: &'static str) -> Asset {
    let hash = hex::encode(Sha256::digest(body.as_bytes()));
    Asset {
        name: format!("{stem}-{}.{ext}", &hash[..12]),
        content_type,
        body,
    }
}

static ASSETS: LazyLock<[Asset; 2]> = LazyLock::new(|| {
    [
        asset("app", "css", "text/css; charset=utf-8", CSS),
        asset("app", "js", "text/javascript; charset=utf-8", JS),
    ]
});

/// The stylesheet's path.
pub(crate) fn css_path() -> String {
    format!("/ui/assets/{}", ASSETS[0].name)
}

/// The script's path.
pub(crate) fn js_path() -> String {
    format!("/ui/assets/{}", ASSETS[1].name)
}

/// `GET /ui/assets/{file}`: public (no page data in them).
pub(super) async fn serve(Path(file): Path<String>) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == file) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let mut resp = a.body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(
        "X-Content-Type-Options",
        HeaderValue::from_static("nosniff"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_content_hash() {
        assert!(css_path().starts_with("/ui/assets/app-"), "{}", css_path());
        assert!(css_path().ends_with(".css"));
        assert!(js_path().ends_with(".js"));
        assert_ne!(ASSETS[0].name, ASSETS[1].name);
    }
}
