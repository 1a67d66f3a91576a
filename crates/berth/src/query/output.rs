//! How the query commands print: an aligned table sized to the terminal
//! (`-o text`), or the answer's stable shape as JSON or YAML.

use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;

/// `-o`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    #[default]
    Text,
    Json,
    Yaml,
}

/// Why an answer could not be written out.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OutputError {
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot write YAML: {0}")]
    Yaml(String),
}

/// `value` as JSON or YAML (with a final newline), or `table()` as text.
pub(crate) fn render<T: Serialize>(
    format: Format,
    value: &T,
    table: impl FnOnce() -> String,
) -> Result<String, OutputError> {
    Ok(match format {
        Format::Json => serde_json::to_string_pretty(value)? + "\n",
        Format::Yaml => {
            let mut text =
                serde_saphyr::to_string(value).map_err(|e| OutputError::Yaml(e.to_string()))?;
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text
        }
        Format::Text => table(),
    })
}

/// Plain aligned columns under `header`, within the terminal's width when
/// standard output is one (the last column is cut to fit).
pub(crate) fn table<const N: usize>(header: [&str; N], rows: Vec<[String; N]>) -> String {
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    if let Some((_, cols)) = console::Term::stdout().size_checked() {
        table.set_width(cols);
    }
    for row in rows {
        let mut row = comfy_table::Row::from(row);
        row.max_height(1);
        table.add_row(row);
    }
    // Flush left, two spaces between columns.
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    let mut text: String = table
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    text.push('\n');
    text
}

/// A size in bytes, as people read it (`1.5 MB`).
pub(crate) fn size(bytes: Option<u64>) -> String {
    let Some(b) = bytes else {
        return "-".into();
    };
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = b as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    match unit {
        0 => format!("{b} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

/// A digest cut to its first 8 hex characters, as `zli` shows it.
pub(crate) fn short(digest: Option<&str>) -> String {
    match digest {
        Some(d) => {
            let hex = d.split_once(':').map_or(d, |(_, h)| h);
            hex.chars().take(8).collect()
        }
        None => "-".into(),
    }
}

/// `true`/`false`/`-`.
pub(crate) fn flag(value: Option<bool>) -> String {
    value.map_or("-".into(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_digests_read_as_people_read_them() {
        assert_eq!(size(Some(999)), "999 B");
        assert_eq!(size(Some(1_500_000)), "1.5 MB");
        assert_eq!(size(None), "-");
        assert_eq!(short(Some("sha256:0123456789abcdef")), "01234567");
    }

    #[test]
    fn formats() {
        let v = serde_json::json!({"a": [1, 2]});
        let json = render(Format::Json, &v, String::new).expect("json");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&json).expect("parses"),
            v
        );
        let yaml = render(Format::Yaml, &v, String::new).expect("yaml");
        assert!(yaml.contains("a:"), "{yaml}");
        let text = render(Format::Text, &v, || {
            table(["A", "B"], vec![["x".into(), "y".into()]])
        })
        .expect("text");
        assert!(text.starts_with('A'), "{text}");
        assert!(text.contains('x') && text.ends_with('\n'), "{text}");
    }
}
