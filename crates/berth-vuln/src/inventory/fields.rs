//! `Key: value` paragraphs, the shape dpkg's status, Python's METADATA
//! and PKG-INFO share: a field per line, continuation lines starting with
//! a space or tab, paragraphs separated by blank lines. Only a field's
//! first line is kept (the fields read here are one line long).

/// One paragraph's fields, in order.
#[derive(Debug, Default)]
pub(super) struct Paragraph<'a> {
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Paragraph<'a> {
    /// The first field named `key` (field names compare without case, as
    /// dpkg and Python's email parser do), trimmed; `None` when absent
    /// or empty.
    pub(super) fn get(&self, key: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| *v)
            .filter(|v| !v.is_empty())
    }
}

/// The paragraphs of `text`; lines that are neither a field nor a
/// continuation are ignored.
pub(super) fn paragraphs(text: &str) -> Vec<Paragraph<'_>> {
    let mut out = Vec::new();
    let mut current = Paragraph::default();
    let mut in_paragraph = false;
    for line in text.lines() {
        if line.trim().is_empty() {
            if in_paragraph {
                out.push(std::mem::take(&mut current));
                in_paragraph = false;
            }
            continue;
        }
        in_paragraph = true;
        if line.starts_with([' ', '\t']) {
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            current.fields.push((key.trim(), value.trim()));
        }
    }
    if in_paragraph {
        out.push(current);
    }
    out
}

/// The first paragraph only: the headers of a METADATA or PKG-INFO file,
/// whose body after the first blank line is free text.
pub(super) fn headers(text: &str) -> Paragraph<'_> {
    let end = text
        .split_inclusive('\n')
        .scan(0, |at, line| {
            let start = *at;
            *at += line.len();
            Some((start, line))
        })
        .find(|(_, line)| line.trim().is_empty())
        .map_or(text.len(), |(start, _)| start);
    paragraphs(&text[..end])
        .into_iter()
        .next()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_fields_and_continuations() {
        let text = "Package: a\nDescription: x\n more\n .\nversion: 1\n\n\n\
                    Package: b\r\n\r\nPackage: c";
        let ps = paragraphs(text);
        assert_eq!(ps.len(), 3);
        assert_eq!(ps[0].get("package"), Some("a"));
        assert_eq!(ps[0].get("Version"), Some("1"));
        assert_eq!(ps[1].get("Package"), Some("b"));
        assert_eq!(ps[2].get("Package"), Some("c"));
        assert_eq!(ps[2].get("Version"), None);
    }

    #[test]
    fn headers_stop_at_the_body() {
        let h = headers("Name: x\nVersion: 2\n\nName: not-a-header\n");
        assert_eq!(h.get("Name"), Some("x"));
        assert_eq!(h.get("Version"), Some("2"));
        assert_eq!(headers("").get("Name"), None);
    }
}
