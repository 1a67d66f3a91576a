//! The HTML shell every page shares (header with the search box, the
//! user's menu, footer), error pages, and the small pieces several pages
//! show (repository cards, badges, sizes, dates, forms' hidden fields).

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::data::{Platform, Repo, Signature, Vulns};
use super::pages::{image_link, repo_link};
use super::{Ctx, UiError, assets, encode};

/// The logo: a ship's hull on water, drawn inline (no request).
const LOGO: &str = r#"<svg viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M3 14h18l-2.5 5h-13z"/><path d="M7 14V8h10v6"/><path d="M12 8V4"/><path d="M2 21c2 0 2-1 4-1s2 1 4 1 2-1 4-1 2 1 4 1 2-1 4-1"/></svg>"#;

/// A whole page: `title`, what the search box holds, the content.
pub(super) fn page(ctx: &Ctx, title: &str, q: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · Berth" }
                link rel="stylesheet" href=(assets::css_path());
                script src=(assets::js_path()) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    div.bar {
                        a.brand href="/" { (PreEscaped(LOGO)) "Berth" }
                        form.search role="search" method="get" action="/ui/repos" {
                            label.sr-only for="q" { "Search repositories" }
                            input #q type="search" name="q" value=(q) placeholder="Search repositories…"
                                aria-autocomplete="list" aria-expanded="false";
                        }
                        nav.user aria-label="Account" {
                            a href="/ui/repos" { "Repositories" }
                            @if let Some(user) = &ctx.user {
                                @if ctx.apikeys { a href="/ui/apikeys" { "API keys" } }
                                span.muted title="Logged in" { (user) }
                                @if ctx.login.as_ref().is_some_and(|l| l.session.is_some()) {
                                    form method="post" action="/ui/logout" {
                                        (csrf(ctx))
                                        button.link type="submit" { "Log out" }
                                    }
                                }
                            } @else if ctx.auth {
                                a href=(format!("/ui/login?next={}", encode(&ctx.here))) { "Log in" }
                            }
                        }
                    }
                }
                main #main { (content) }
                footer { "Berth " (env!("CARGO_PKG_VERSION")) " · an OCI registry" }
            }
        }
    }
}

/// A page answered with `status`.
pub(super) fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut resp = (status, markup.into_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

/// A page answered 200.
pub(super) fn ok(ctx: &Ctx, title: &str, q: &str, content: Markup) -> Response {
    html_response(StatusCode::OK, page(ctx, title, q, content))
}

/// What a failed page answers: a page saying why (never an internal
/// cause, which goes to the log), or the login page for one that needs a
/// user.
pub(super) fn error_page(ctx: &Ctx, e: UiError) -> Response {
    let (status, title, text) = match e {
        UiError::Login(next) => {
            return super::see_other(&format!("/ui/login?next={}", encode(&next)));
        }
        UiError::NotFound => (
            StatusCode::NOT_FOUND,
            "Not found",
            "There is nothing here, or nothing you may see. If you expected something, try logging in."
                .to_string(),
        ),
        UiError::Forbidden(why) => (StatusCode::FORBIDDEN, "Refused", why),
        UiError::BadRequest(why) => (StatusCode::BAD_REQUEST, "Bad request", why),
        UiError::Api(e) if e.status().is_client_error() => {
            (e.status(), "Refused", "The request was refused.".to_string())
        }
        UiError::Api(e) => {
            tracing::error!(error = ?e, "ui: a page failed");
            let status = if e.status() == StatusCode::SERVICE_UNAVAILABLE {
                e.status()
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            (status, "Something went wrong", "The page could not be made; try again in a moment.".to_string())
        }
        UiError::Internal(cause) => {
            tracing::error!(%cause, "ui: a page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The page could not be made; try again in a moment.".to_string(),
            )
        }
    };
    let content = html! {
        h1 { (title) }
        div.notice.error role="alert" { p { (text) } }
        p { a href="/" { "Home" } " · " a href="/ui/repos" { "All repositories" } }
    };
    html_response(status, page(ctx, title, "", content))
}

/// The hidden CSRF field of a form that changes something.
pub(super) fn csrf(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name="csrf" value=(ctx.csrf); }
}

/// A size in bytes (search answers it as a decimal string), for people.
pub(super) fn size(bytes: &str) -> String {
    let Ok(n) = bytes.parse::<u64>() else {
        return bytes.to_string();
    };
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A time (RFC 3339) as a `<time>`, shown to the minute in UTC.
pub(super) fn time(t: &str) -> Markup {
    let shown = if t.len() >= 16 && !t.starts_with("0001") {
        format!("{} {} UTC", &t[..10], &t[11..16])
    } else {
        "never".to_string()
    };
    html! { time datetime=(t) { (shown) } }
}

/// The vulnerability summary's badge (nothing when not scanned).
pub(super) fn vulns(v: Option<&Vulns>) -> Markup {
    html! {
        @if let Some(v) = v.filter(|v| !v.max_severity.is_empty()) {
            @let sev = v.max_severity.to_ascii_uppercase();
            span class=(format!("sev sev-{sev}")) title="Highest severity of its vulnerabilities" {
                (sev) @if v.count > 0 { " · " (v.count) }
            }
        }
    }
}

/// Whether an image is signed and by whom it is trusted.
pub(super) fn signed(is_signed: bool, sigs: &[Signature]) -> Markup {
    let trusted = sigs.iter().any(|s| s.is_trusted);
    html! {
        @if trusted {
            span.chip.ok title="Signed, and the signature is trusted" { "✔ signed, trusted" }
        } @else if is_signed {
            span.chip title="Signed, by a key not among the trusted ones" { "signed" }
        }
    }
}

/// Platforms as chips.
pub(super) fn platforms(ps: &[Platform]) -> Markup {
    html! {
        @if !ps.is_empty() {
            span.chips { @for p in ps { span.chip { (p.label()) } } }
        }
    }
}

/// A repository's card (home page, list).
pub(super) fn repo_card(r: &Repo) -> Markup {
    let newest = r.newest_image.as_ref();
    html! {
        article.card {
            h3 { a href=(repo_link(&r.name)) { (r.name) } }
            @if let Some(i) = newest.filter(|i| !i.description.is_empty()) {
                p { (i.description) }
            }
            (platforms(&r.platforms))
            div.meta {
                @if let Some(i) = newest {
                    a href=(image_link(&r.name, &i.tag)) { code { (i.tag) } }
                    (vulns(i.vulnerabilities.as_ref()))
                    (signed(i.is_signed, &i.signature_info))
                }
                span { (size(&r.size)) }
                span title="Downloads" { "↓ " (r.download_count) }
                span title="Stars" { "★ " (r.star_count) }
                span { "updated " (time(&r.last_updated)) }
            }
        }
    }
}

/// Cards, or a line saying there are none.
pub(super) fn cards(repos: &[Repo], none: &str) -> Markup {
    html! {
        @if repos.is_empty() {
            p.empty { (none) }
        } @else {
            div.grid { @for r in repos { (repo_card(r)) } }
        }
    }
}

/// A text to copy, with its copy button (shown by the script).
pub(super) fn copyable(id: &str, text: &str) -> Markup {
    html! {
        div.pull {
            pre #(id) { (text) }
            button.secondary type="button" data-copy=(format!("#{id}")) hidden aria-label="Copy to the clipboard" { "Copy" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times_for_people() {
        assert_eq!(size("0"), "0 B");
        assert_eq!(size("999"), "999 B");
        assert_eq!(size("1500"), "1.5 KB");
        assert_eq!(size("25000000"), "25.0 MB");
        assert_eq!(size("x"), "x");
        assert!(
            time("2024-05-01T12:34:56Z")
                .into_string()
                .contains("2024-05-01 12:34 UTC")
        );
        assert!(time("0001-01-01T00:00:00Z").into_string().contains("never"));
    }

    #[test]
    fn text_is_escaped() {
        let r = Repo {
            name: "a".into(),
            newest_image: Some(super::super::data::Image {
                tag: "v1".into(),
                description: "<script>alert(1)</script>".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let html = repo_card(&r).into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }
}
