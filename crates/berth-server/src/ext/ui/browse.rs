//! The pages for browsing: home, the repository list (search with its
//! filters and sorts), a repository, an image. Each reads search as its
//! caller and shows what it answered.

use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::data::{self, Image, ImagePage, ListQuery, Referrer};
use super::layout::{self, cards, copyable, platforms, signed, size, time, vulns};
use super::pages::{image_link, repo_link};
use super::{Ctx, UiError, encode};
use crate::api::params::Params;
use crate::ext::search::Search;
use berth_oci::{RepoName, Tag};

/// The sorts the list offers: (parameter, `SortCriteria`, label).
const SORTS: &[(&str, &str, &str)] = &[
    ("relevance", "RELEVANCE", "Relevance"),
    ("updated", "UPDATE_TIME", "Recently updated"),
    ("name", "ALPHABETIC_ASC", "Name (A–Z)"),
    ("name-desc", "ALPHABETIC_DSC", "Name (Z–A)"),
    ("stars", "STARS", "Most starred"),
    ("downloads", "DOWNLOADS", "Most downloaded"),
];

/// `GET /`.
pub(super) async fn home(search: &Search, ctx: &Ctx) -> Result<Response, UiError> {
    let h = data::home(search, &ctx.caller, ctx.user.is_some() && ctx.userprefs).await?;
    let total = h.recent.page.total_count;
    let content = html! {
        h1 { "Repositories" }
        p.muted {
            (total) @if total == 1 { " repository" } @else { " repositories" }
            " you can pull. " a href="/ui/repos" { "Browse all" }
        }
        @if ctx.user.is_some() && ctx.userprefs {
            section aria-labelledby="starred" {
                h2 #starred { "Starred" }
                (cards(&h.starred.repos, "No starred repositories yet: star one on its page."))
            }
            section aria-labelledby="bookmarked" {
                h2 #bookmarked { "Bookmarked" }
                (cards(&h.bookmarked.repos, "No bookmarks yet."))
            }
        }
        section aria-labelledby="recent" {
            h2 #recent { "Recently updated" }
            (cards(&h.recent.repos, "Nothing here yet: push an image to see it."))
        }
        section aria-labelledby="popular" {
            h2 #popular { "Most downloaded" }
            (cards(&h.popular.repos, "Nothing pulled yet."))
        }
    };
    Ok(layout::ok(ctx, "Home", "", content))
}

/// The list's query from the request's parameters.
fn list_query(q: &Params) -> ListQuery {
    let text = q.get("q").unwrap_or("").trim().to_string();
    let default_sort = if text.is_empty() {
        "updated"
    } else {
        "relevance"
    };
    let sort_param = q.get("sort").unwrap_or(default_sort);
    let sort = SORTS
        .iter()
        .find(|s| s.0 == sort_param)
        .map_or("RELEVANCE", |s| s.1);
    let some = |k: &str| {
        q.get(k)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let on = |k: &str| q.get(k).is_some_and(|v| !v.is_empty() && v != "0");
    ListQuery {
        text,
        sort,
        os: some("os"),
        arch: some("arch"),
        signed: on("signed"),
        starred: on("starred"),
        bookmarked: on("bookmarked"),
        page: q
            .get("page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1)
            .clamp(1, 100_000),
    }
}

/// The list's link to `page` of the same query.
fn list_link(l: &ListQuery, page: i64) -> String {
    let sort = SORTS
        .iter()
        .find(|s| s.1 == l.sort)
        .map_or("relevance", |s| s.0);
    let mut link = format!("/ui/repos?q={}&sort={sort}", encode(&l.text));
    for (k, v) in [("os", &l.os), ("arch", &l.arch)] {
        if let Some(v) = v {
            link.push_str(&format!("&{k}={}", encode(v)));
        }
    }
    for (k, v) in [
        ("signed", l.signed),
        ("starred", l.starred),
        ("bookmarked", l.bookmarked),
    ] {
        if v {
            link.push_str(&format!("&{k}=1"));
        }
    }
    link.push_str(&format!("&page={page}"));
    link
}

/// `GET /ui/repos`: search with filters and sorts; `?suggest=1` answers
/// the first names as JSON, for the search box's suggestions.
pub(super) async fn repos(search: &Search, ctx: &Ctx, q: &Params) -> Result<Response, UiError> {
    let l = list_query(q);
    let found = data::repo_list(search, &ctx.caller, &l).await?;
    if q.get("suggest").is_some() {
        let names: Vec<&str> = found
            .repos
            .iter()
            .take(9)
            .map(|r| r.name.as_str())
            .collect();
        return Ok(axum::Json(names).into_response());
    }
    let total = found.page.total_count;
    let pages = (total + data::LIST_PAGE - 1) / data::LIST_PAGE;
    let user = ctx.user.is_some() && ctx.userprefs;
    let content = html! {
        h1 {
            @if l.text.is_empty() { "All repositories" } @else { "Repositories matching “" (l.text) "”" }
        }
        div.layout {
            aside aria-label="Filters" {
                form method="get" action="/ui/repos" {
                    input type="hidden" name="q" value=(l.text);
                    label for="sort" { "Sort by" }
                    select #sort name="sort" {
                        @for (p, c, label) in SORTS {
                            option value=(p) selected[*c == l.sort] { (label) }
                        }
                    }
                    fieldset {
                        legend { "Platform" }
                        label for="os" { "OS" }
                        input #os type="text" name="os" value=(l.os.as_deref().unwrap_or("")) placeholder="linux";
                        label for="arch" { "Architecture" }
                        input #arch type="text" name="arch" value=(l.arch.as_deref().unwrap_or("")) placeholder="amd64";
                    }
                    fieldset {
                        legend { "Only" }
                        label { input type="checkbox" name="signed" value="1" checked[l.signed]; "Signed images" }
                        @if user {
                            label { input type="checkbox" name="starred" value="1" checked[l.starred]; "Starred" }
                            label { input type="checkbox" name="bookmarked" value="1" checked[l.bookmarked]; "Bookmarked" }
                        }
                    }
                    button type="submit" { "Apply" }
                }
            }
            section aria-label="Results" {
                p.muted role="status" { (total) " found" @if pages > 1 { " · page " (l.page) " of " (pages) } }
                (cards(&found.repos, "No repository matches."))
                @if pages > 1 {
                    nav.pager aria-label="Pages" {
                        @if l.page > 1 { a rel="prev" href=(list_link(&l, l.page - 1)) { "← Previous" } }
                        @if l.page < pages { a rel="next" href=(list_link(&l, l.page + 1)) { "Next →" } }
                    }
                }
            }
        }
    };
    Ok(layout::ok(ctx, "Repositories", &l.text, content))
}

/// A star or bookmark toggle (for a user, where preferences are kept).
fn toggle(ctx: &Ctx, repo: &str, action: &str, on: bool) -> Markup {
    let (label_on, label_off) = match action {
        "star" => ("★ Starred", "☆ Star"),
        _ => ("✓ Bookmarked", "Bookmark"),
    };
    html! {
        form method="post" action="/ui/prefs" {
            (layout::csrf(ctx))
            input type="hidden" name="repo" value=(repo);
            input type="hidden" name="action" value=(action);
            button.secondary type="submit" aria-pressed=(on) { @if on { (label_on) } @else { (label_off) } }
        }
    }
}

/// `GET /ui/repo/<name>`.
pub(super) async fn repo(search: &Search, ctx: &Ctx, name: &RepoName) -> Result<Response, UiError> {
    let info = data::repo(search, &ctx.caller, name.as_str())
        .await?
        .ok_or(UiError::NotFound)?;
    let s = &info.summary;
    let newest = s.newest_image.as_ref();
    let pull = newest.map(|i| format!("docker pull {}/{}:{}", ctx.host, name, i.tag));
    let content = html! {
        nav aria-label="Breadcrumb" { a href="/ui/repos" { "Repositories" } " / " }
        h1 { (name) }
        @if let Some(i) = newest.filter(|i| !i.description.is_empty()) { p { (i.description) } }
        div.actions {
            @if ctx.user.is_some() && ctx.userprefs {
                (toggle(ctx, name.as_str(), "star", s.is_starred))
                (toggle(ctx, name.as_str(), "bookmark", s.is_bookmarked))
            }
            span.muted { "★ " (s.star_count) " · ↓ " (s.download_count) " · " (size(&s.size)) " · updated " (time(&s.last_updated)) }
        }
        (platforms(&s.platforms))
        @if let Some(p) = &pull {
            h2 { "Pull" }
            (copyable("pull", p))
        }
        h2 { "Tags" }
        div.table-wrap {
            table {
                thead { tr { th scope="col" { "Tag" } th scope="col" { "Platforms" } th scope="col" { "Size" }
                    th scope="col" { "Last push" } th scope="col" { "Signature" } th scope="col" { "Vulnerabilities" } } }
                tbody {
                    @for i in &info.images {
                        tr {
                            td { a href=(image_link(name.as_str(), &i.tag)) { code { (i.tag) } } }
                            td { @for m in &i.manifests { span.chip { (m.platform.label()) } " " } }
                            td { (size(&i.size)) }
                            td { (time(&i.last_updated)) }
                            td { (signed(i.is_signed, &i.signature_info)) }
                            td { (vulns(i.vulnerabilities.as_ref())) }
                        }
                    }
                }
            }
        }
        @if let Some(i) = newest {
            @let notes = i.annotations();
            @if !notes.is_empty() {
                h2 { "About (" code { (i.tag) } ")" }
                (annotation_table(&notes))
            }
        }
    };
    Ok(layout::ok(ctx, name.as_str(), "", content))
}

fn annotation_table(notes: &[(&str, &str)]) -> Markup {
    html! {
        div.table-wrap { table {
            tbody { @for (k, v) in notes { tr { th scope="row" { (k) } td { (v) } } } }
        } }
    }
}

fn referrers(refs: &[Referrer]) -> Markup {
    html! {
        @if refs.is_empty() {
            p.empty { "None." }
        } @else {
            div.table-wrap { table {
                thead { tr { th scope="col" { "Artifact type" } th scope="col" { "Digest" } th scope="col" { "Size" } th scope="col" { "Annotations" } } }
                tbody { @for r in refs { tr {
                    td { (if r.artifact_type.is_empty() { &r.media_type } else { &r.artifact_type }) }
                    td { code { (r.digest) } }
                    td { (size(&r.size.to_string())) }
                    td { @for a in &r.annotations { div { code { (a.key) } " = " (a.value) } } }
                } } }
            } }
        }
    }
}

fn related(list: &ImagePage, none: &str) -> Markup {
    html! {
        @if list.results.is_empty() {
            p.empty { (none) }
        } @else {
            ul { @for i in &list.results {
                li {
                    a href=(image_link(&i.repo_name, &i.tag)) { (i.repo_name) ":" (i.tag) }
                    " " (vulns(i.vulnerabilities.as_ref())) " " (signed(i.is_signed, &i.signature_info))
                }
            } }
            @if list.page.total_count > list.page.item_count {
                p.muted { "and " (list.page.total_count - list.page.item_count) " more" }
            }
        }
    }
}

/// The largest image config shown.
const CONFIG_LIMIT: u64 = 256 * 1024;

/// An image's config, as JSON, when it is small enough to show and reads.
async fn image_config(search: &Search, repo: &RepoName, digest: &str) -> Option<serde_json::Value> {
    use futures_util::TryStreamExt;
    let digest: berth_oci::Digest = digest.parse().ok()?;
    let registry = search.registry();
    let len = registry.blob_len(repo, &digest).await.ok()?;
    if len > CONFIG_LIMIT {
        return None;
    }
    let stream = registry.read_blob_range(repo, &digest, 0, len).await.ok()?;
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await.ok()?;
    serde_json::from_slice(&chunks.concat()).ok()
}

/// What a config says of how the image runs: its `config` section's
/// command, environment, ports, user and labels, then the whole document.
fn config_section(config: &serde_json::Value) -> Markup {
    let run = &config["config"];
    let words = |v: &serde_json::Value| -> String {
        match v {
            serde_json::Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(" "),
            serde_json::Value::Object(o) => o.keys().cloned().collect::<Vec<_>>().join(" "),
            serde_json::Value::Null => String::new(),
            other => other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_string),
        }
    };
    let rows: Vec<(&str, String)> = [
        ("Entrypoint", words(&run["Entrypoint"])),
        ("Command", words(&run["Cmd"])),
        ("Working directory", words(&run["WorkingDir"])),
        ("User", words(&run["User"])),
        ("Exposed ports", words(&run["ExposedPorts"])),
        ("Stop signal", words(&run["StopSignal"])),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect();
    let env: Vec<&str> = run["Env"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e.as_str()).collect())
        .unwrap_or_default();
    let labels: Vec<(&String, String)> = run["Labels"]
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k, words(v))).collect())
        .unwrap_or_default();
    let pretty = serde_json::to_string_pretty(config).unwrap_or_default();
    html! {
        details {
            summary { "Config" }
            @if !rows.is_empty() {
                div.table-wrap { table {
                    tbody { @for (k, v) in &rows { tr { th scope="row" { (k) } td { code { (v) } } } } }
                } }
            }
            @if !env.is_empty() {
                p { strong { "Environment" } }
                ul.plain { @for e in &env { li { code { (e) } } } }
            }
            @if !labels.is_empty() {
                p { strong { "Labels" } }
                div.table-wrap { table {
                    tbody { @for (k, v) in &labels { tr { th scope="row" { code { (k) } } td { (v) } } } }
                } }
            }
            pre { (pretty) }
        }
    }
}

fn manifest_section(m: &data::Manifest, config: Option<&serde_json::Value>) -> Markup {
    html! {
        section.card {
            h3 { (m.platform.label()) }
            div.meta {
                span { "manifest " code { (m.digest) } }
                span { "config " code { (m.config_digest) } }
                span { (size(&m.size)) }
                span { "built " (time(&m.last_updated)) }
            }
            @if let Some(c) = config { (config_section(c)) }
            details open {
                summary { "Layers (" (m.layers.len()) ")" }
                div.table-wrap { table {
                    thead { tr { th scope="col" { "#" } th scope="col" { "Command" } th scope="col" { "Size" } } }
                    tbody {
                        @if m.history.is_empty() {
                            @for (n, l) in m.layers.iter().enumerate() {
                                tr { td { (n + 1) } td { code { (l.digest) } } td { (size(&l.size)) } }
                            }
                        } @else {
                            @for (n, h) in m.history.iter().enumerate() {
                                @let d = h.history_description.as_ref();
                                tr {
                                    td { (n + 1) }
                                    td { @match (d.map(|d| d.created_by.as_str()).filter(|c| !c.is_empty()), &h.layer) {
                                        (Some(cmd), _) => pre { (cmd) },
                                        (None, Some(l)) => code { (l.digest) },
                                        (None, None) => span.muted { "—" },
                                    } }
                                    td { @match &h.layer { Some(l) => (size(&l.size)), None => span.muted { "empty" } } }
                                }
                            }
                        }
                    }
                } }
            }
            @if !m.referrers.is_empty() {
                h3 { "Referrers of this platform" }
                (referrers(&m.referrers))
            }
        }
    }
}

const SEVERITIES: &[&str] = &["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"];

/// `GET /ui/image/<name>:<tag>` (`?severity=` filters vulnerabilities).
pub(super) async fn image(
    search: &Search,
    ctx: &Ctx,
    name: &RepoName,
    tag: &Tag,
    q: &Params,
) -> Result<Response, UiError> {
    let severity = q
        .get("severity")
        .map(str::to_ascii_uppercase)
        .filter(|s| SEVERITIES.contains(&s.as_str()));
    let reference = format!("{name}:{tag}");
    let view = data::image(search, &ctx.caller, &reference, severity.as_deref())
        .await?
        .ok_or(UiError::NotFound)?;
    let i: &Image = &view.image;
    let notes = i.annotations();
    // Search has shown the caller this image: its configs may be read.
    let mut configs = Vec::with_capacity(i.manifests.len());
    for m in &i.manifests {
        configs.push(image_config(search, name, &m.config_digest).await);
    }
    let content = html! {
        nav aria-label="Breadcrumb" { a href="/ui/repos" { "Repositories" } " / " a href=(repo_link(name.as_str())) { (name) } " / " }
        h1 { (name) ":" (tag) }
        div.actions {
            (vulns(i.vulnerabilities.as_ref()))
            (signed(i.is_signed, &i.signature_info))
            span.muted { (size(&i.size)) " · ↓ " (i.download_count) " · updated " (time(&i.last_updated)) }
        }
        (copyable("pull", &format!("docker pull {}/{}:{}", ctx.host, name, tag)))
        p.muted { "Digest " code { (i.digest) } " · " (i.media_type) }
        @if !notes.is_empty() {
            h2 { "Annotations" }
            (annotation_table(&notes))
        }
        h2 { "Platforms" }
        @for (m, config) in i.manifests.iter().zip(&configs) { (manifest_section(m, config.as_ref())) }
        h2 { "Signatures" }
        @if i.signature_info.is_empty() {
            p.empty { "Not signed." }
        } @else {
            div.table-wrap { table {
                thead { tr { th scope="col" { "Tool" } th scope="col" { "Trusted" } th scope="col" { "Author" } } }
                tbody { @for s in &i.signature_info { tr {
                    td { (s.tool) }
                    td { @if s.is_trusted { span.ok { "trusted" } } @else { span.bad { "not trusted" } } }
                    td { (s.author) }
                } } }
            } }
        }
        @if let Some(c) = &view.cves {
            h2 #vulnerabilities { "Vulnerabilities" }
            p {
                @for (label, n) in [("critical", c.summary.critical_count), ("high", c.summary.high_count),
                    ("medium", c.summary.medium_count), ("low", c.summary.low_count), ("unknown", c.summary.unknown_count)] {
                    span class=(format!("sev sev-{}", label.to_ascii_uppercase())) { (n) " " (label) } " "
                }
            }
            form.actions method="get" action=(image_link(name.as_str(), tag.as_str())) {
                label for="severity" { "Severity" }
                select #severity name="severity" {
                    option value="" { "All" }
                    @for s in SEVERITIES { option value=(s) selected[severity.as_deref() == Some(*s)] { (s) } }
                }
                button type="submit" { "Filter" }
            }
            @if c.cve_list.is_empty() {
                p.empty { "None found." }
            } @else {
                div.table-wrap { table {
                    thead { tr { th scope="col" { "Id" } th scope="col" { "Severity" } th scope="col" { "Title" } th scope="col" { "Packages" } } }
                    tbody { @for v in &c.cve_list { tr {
                        td { @if v.reference.starts_with("https://") { a href=(v.reference) rel="noreferrer" { (v.id) } } @else { (v.id) } }
                        td { span class=(format!("sev sev-{}", v.severity.to_ascii_uppercase())) { (v.severity) } }
                        td { (v.title) }
                        td { @for p in &v.package_list { div { code { (p.name) " " (p.installed_version) } @if !p.fixed_version.is_empty() { " → fixed in " (p.fixed_version) } } } }
                    } } }
                } }
            }
        }
        h2 { "Referrers" }
        (referrers(&i.referrers))
        h2 { "Built on" }
        (related(&view.base, "No image here is a base of this one."))
        h2 { "Built on this" }
        (related(&view.derived, "No image here is built on this one."))
    };
    Ok(layout::ok(ctx, &reference, "", content))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_queries_and_links_round_trip() {
        let q = Params::parse(Some("q=app&sort=stars&os=linux&signed=1&page=3"));
        let l = list_query(&q);
        assert_eq!(l.sort, "STARS");
        assert_eq!(l.os.as_deref(), Some("linux"));
        assert!(l.signed && !l.starred);
        assert_eq!(l.page, 3);
        let back = list_query(&Params::parse(
            list_link(&l, 3).split_once('?').map(|x| x.1),
        ));
        assert_eq!(back, l);
        assert_eq!(list_query(&Params::parse(None)).sort, "UPDATE_TIME");
        assert_eq!(list_query(&Params::parse(Some("q=x"))).sort, "RELEVANCE");
    }
}
