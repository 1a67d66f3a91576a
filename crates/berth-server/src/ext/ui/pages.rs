//! The UI's paths below `/ui/`, parsed into a [`Page`] by a pure
//! function (as `api::endpoint` does for the API), and the links pages
//! make to each other.

use berth_oci::{RepoName, Tag};

/// A page or form of the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Page {
    /// `/`
    Home,
    /// `/ui/repos?q=&sort=&os=&arch=&signed=&starred=&bookmarked=&page=`
    Repos,
    /// `/ui/repo/<name>`
    Repo(RepoName),
    /// `/ui/image/<name>:<tag>` (`?severity=` filters vulnerabilities)
    Image(RepoName, Tag),
    /// `/ui/login` (`GET` the form, `POST` it)
    Login,
    /// `/ui/logout` (`POST`)
    Logout,
    /// `/ui/prefs` (`POST`: toggle a star or a bookmark)
    Prefs,
    /// `/ui/apikeys` (`GET` the list, `POST` a new key)
    ApiKeys,
    /// `/ui/apikeys/revoke` (`POST`)
    RevokeKey,
}

/// Decodes `%XX` escapes (a browser may send `:` as `%3A`).
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The page at `path` (the request's path), if it is one.
pub(crate) fn parse(path: &str) -> Option<Page> {
    let rest = path.strip_prefix("/ui/")?;
    Some(match rest {
        "repos" => Page::Repos,
        "login" => Page::Login,
        "logout" => Page::Logout,
        "prefs" => Page::Prefs,
        "apikeys" => Page::ApiKeys,
        "apikeys/revoke" => Page::RevokeKey,
        _ => {
            let decoded = percent_decode(rest)?;
            if let Some(name) = decoded.strip_prefix("repo/") {
                Page::Repo(name.parse().ok()?)
            } else if let Some(image) = decoded.strip_prefix("image/") {
                // A name has no `:`, a tag no `/`.
                let (name, tag) = image.rsplit_once(':')?;
                Page::Image(name.parse().ok()?, tag.parse().ok()?)
            } else {
                return None;
            }
        }
    })
}

/// A repository's page.
pub(crate) fn repo_link(name: &str) -> String {
    format!("/ui/repo/{}", super::encode(name))
}

/// An image's page.
pub(crate) fn image_link(name: &str, tag: &str) -> String {
    format!("/ui/image/{}:{}", super::encode(name), super::encode(tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> RepoName {
        s.parse().expect("name")
    }

    #[test]
    fn table() {
        let t = |s: &str| -> Tag { s.parse().expect("tag") };
        for (path, want) in [
            ("/ui/repos", Some(Page::Repos)),
            ("/ui/login", Some(Page::Login)),
            ("/ui/logout", Some(Page::Logout)),
            ("/ui/prefs", Some(Page::Prefs)),
            ("/ui/apikeys", Some(Page::ApiKeys)),
            ("/ui/apikeys/revoke", Some(Page::RevokeKey)),
            ("/ui/repo/team/app", Some(Page::Repo(n("team/app")))),
            (
                "/ui/image/team/app:v1",
                Some(Page::Image(n("team/app"), t("v1"))),
            ),
            (
                "/ui/image/team/app%3Av1",
                Some(Page::Image(n("team/app"), t("v1"))),
            ),
            ("/ui/image/team/app", None),
            ("/ui/image/team/app:-bad", None),
            ("/ui/repo/Team", None),
            ("/ui/repo/../x", None),
            ("/ui/repo/%ZZ", None),
            ("/ui/unknown", None),
            ("/ui/", None),
            ("/", None),
        ] {
            assert_eq!(parse(path), want, "{path}");
        }
    }

    #[test]
    fn links_parse_back() {
        assert_eq!(parse(&repo_link("a/b")), Some(Page::Repo(n("a/b"))));
        assert_eq!(
            parse(&image_link("a/b", "1.0")),
            Some(Page::Image(n("a/b"), "1.0".parse().expect("tag")))
        );
    }
}
