//! What an `Authorization` header carries, read with the `headers` crate's
//! typed `Authorization<Basic>` and `Authorization<Bearer>`.

use headers::authorization::{Basic, Bearer};
use headers::{Authorization, Header as _};
use http::HeaderMap;

/// The credentials of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Credentials {
    /// `Basic`: a user and a password, either possibly empty.
    Basic { user: String, password: String },
    /// `Bearer`: a token, never empty.
    Bearer(String),
}

impl Credentials {
    /// The credentials of the (first) `Authorization` header of `headers`;
    /// `None` when it is neither a `Basic` nor a `Bearer` one that parses
    /// (schemes are matched case-insensitively).
    pub(crate) fn parse(headers: &HeaderMap) -> Option<Self> {
        let raw = headers.get(http::header::AUTHORIZATION)?;
        // White space around the value is not part of it (hyper strips it
        // from HTTP/1 headers; a value made in process may keep it).
        let value = http::HeaderValue::from_bytes(raw.as_bytes().trim_ascii()).ok()?;
        let value = || std::iter::once(&value);
        if let Ok(bearer) = Authorization::<Bearer>::decode(&mut value()) {
            let token = bearer.token().trim();
            return (!token.is_empty()).then(|| Self::Bearer(token.to_string()));
        }
        let basic = Authorization::<Basic>::decode(&mut value()).ok()?;
        Some(Self::Basic {
            user: basic.username().to_string(),
            password: basic.password().to_string(),
        })
    }

    /// Empty `Basic` credentials (`Og==`, ":") are what clients without any
    /// send after a Basic challenge (containers/image does): no credentials
    /// at all.
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Self::Basic { user, password } if user.is_empty() && password.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    fn parse(value: &str) -> Option<Credentials> {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_str(value).expect("value"),
        );
        Credentials::parse(&headers)
    }

    fn basic(user: &str, password: &str) -> Option<Credentials> {
        Some(Credentials::Basic {
            user: user.into(),
            password: password.into(),
        })
    }

    #[test]
    fn bearer_headers() {
        let bearer = |t: &str| Some(Credentials::Bearer(t.into()));
        assert_eq!(parse("Bearer abc.def"), bearer("abc.def"));
        assert_eq!(parse("bearer  x "), bearer("x"));
        assert_eq!(parse("Bearer "), None);
        assert_eq!(parse("Bearer"), None);
    }

    #[test]
    fn basic_headers() {
        let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(
            parse(&format!("Basic {}", enc("alice:s3:cret"))),
            basic("alice", "s3:cret")
        );
        assert_eq!(parse(&format!("basic {}", enc("bob:"))), basic("bob", ""));
        assert_eq!(parse("Basic Og=="), basic("", ""));
        assert_eq!(
            parse(" Basic YTpi\t"),
            basic("a", "b"),
            "white space around"
        );
        assert!(parse("Basic Og==").is_some_and(|c| c.is_empty()));
        assert!(!basic("bob", "").is_some_and(|c| c.is_empty()));
        for bad in [
            "",
            "Basic",
            "Basic !!!",
            "Digest abc",
            "Basic\tYTpi",
            &format!("Basic {}", enc("nocolon")),
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
