//! What `berth scan` prints: per image, a table of findings sized to the
//! terminal, a summary line and the notes (`-o text`), or a stable JSON
//! document (`-o json`: one object per image; an index's images as an
//! array of them).

use berth_vuln::inventory::OsRelease;
use berth_vuln::{Finding, Severity};
use comfy_table::{ColumnConstraint, ContentArrangement, Row, Table, presets};
use serde::Serialize;

/// The report of one image: the JSON shape, field for field.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// IMAGE as given on the command line.
    pub(crate) image: String,
    /// The image manifest's digest.
    pub(crate) digest: String,
    /// `os/architecture[/variant]`, when the index or the config says.
    pub(crate) platform: Option<String>,
    /// What os-release says (`id`, `version_id`, `pretty_name`).
    pub(crate) os: Option<OsRelease>,
    /// How many packages the image installs.
    pub(crate) packages: usize,
    /// Worst first (then by id).
    pub(crate) findings: Vec<Finding>,
    /// What could not be read or checked.
    pub(crate) notes: Vec<String>,
    pub(crate) summary: Summary,
}

/// Findings counted by severity.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Summary {
    pub(crate) critical: usize,
    pub(crate) high: usize,
    pub(crate) medium: usize,
    pub(crate) low: usize,
    pub(crate) unknown: usize,
    pub(crate) total: usize,
}

impl Summary {
    pub(crate) fn of(findings: &[Finding]) -> Self {
        let mut s = Self::default();
        for f in findings {
            let slot = match f.severity {
                Severity::Critical => &mut s.critical,
                Severity::High => &mut s.high,
                Severity::Medium => &mut s.medium,
                Severity::Low => &mut s.low,
                Severity::Unknown => &mut s.unknown,
            };
            *slot += 1;
            s.total += 1;
        }
        s
    }
}

/// The JSON document: the one report, or an array of several.
pub(crate) fn json(reports: &[Report]) -> serde_json::Result<String> {
    let text = match reports {
        [one] => serde_json::to_string_pretty(one)?,
        many => serde_json::to_string_pretty(many)?,
    };
    Ok(text + "\n")
}

/// The text report; `width` is the terminal's, if stdout is one.
pub(crate) fn text(reports: &[Report], width: Option<u16>) -> String {
    let mut out = String::new();
    for (i, r) in reports.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("{} ({}", r.image, r.digest));
        if let Some(p) = &r.platform {
            out.push_str(&format!(", {p}"));
        }
        out.push_str(")\n");
        let os = r.os.as_ref().map_or_else(
            || "unknown distribution".to_owned(),
            |os| {
                os.pretty_name.clone().unwrap_or_else(|| {
                    format!("{} {}", os.id, os.version_id.as_deref().unwrap_or(""))
                })
            },
        );
        out.push_str(&format!("{}, {} packages\n", os.trim(), r.packages));
        if r.findings.is_empty() {
            out.push_str("no vulnerabilities found\n");
        } else {
            out.push_str(&table(&r.findings, width));
            out.push('\n');
        }
        let s = r.summary;
        out.push_str(&format!(
            "{} vulnerabilities: {} critical, {} high, {} medium, {} low, {} unknown\n",
            s.total, s.critical, s.high, s.medium, s.low, s.unknown
        ));
        for note in &r.notes {
            out.push_str(&format!("note: {note}\n"));
        }
    }
    out
}

/// ID, severity, package, installed, fixed, title: plain aligned
/// columns, one line per finding; within `width`, titles are cut (`…`)
/// to fit, the other columns kept whole.
fn table(findings: &[Finding], width: Option<u16>) -> String {
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(["ID", "SEVERITY", "PACKAGE", "INSTALLED", "FIXED", "TITLE"])
        .set_constraints([ColumnConstraint::ContentWidth; 5]);
    if let Some(w) = width {
        table.set_width(w);
    }
    for f in findings {
        let package = match &f.package.source {
            Some(source) if *source != f.package.name => {
                format!("{} ({source})", f.package.name)
            }
            _ => f.package.name.clone(),
        };
        let mut row = Row::from([
            f.id.clone(),
            f.severity.as_str().to_owned(),
            package,
            f.package.version.clone(),
            f.fixed_version.clone().unwrap_or_else(|| "-".into()),
            f.title.clone(),
        ]);
        row.max_height(1);
        table.add_row(row);
    }
    table
        .lines()
        .map(|l| l.trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}
