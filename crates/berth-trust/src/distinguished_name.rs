//! A certificate's distinguished name as Go's `pkix.Name.String()` writes
//! it, which is what zot returns as a notation signature's author.
//!
//! Hand-written because the string must be Go's, byte for byte, and no
//! crate writes that form (x509-parser's `Display` puts the names in
//! certificate order with other separators). Go's rules: the standard
//! attributes are grouped by type, one relative name per type (several
//! values joined by `+`), in the order C, ST, L, STREET, POSTALCODE, O, OU,
//! CN, SERIALNUMBER, other attribute types before them as `OID=#<DER in
//! hex>`; the whole sequence is then written in reverse, joined by `,`,
//! with RFC 2253's escapes.

use x509_parser::der_parser::asn1_rs::{Any, Class, Tag};
use x509_parser::x509::X509Name;

/// The standard attribute types Go names, in the order it groups them.
const STANDARD_ORDER: [(&str, &str); 9] = [
    ("2.5.4.6", "C"),
    ("2.5.4.8", "ST"),
    ("2.5.4.7", "L"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.17", "POSTALCODE"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.3", "CN"),
    ("2.5.4.5", "SERIALNUMBER"),
];

/// Index of CN and SERIALNUMBER in [`STANDARD_ORDER`]: single-valued in Go
/// (the last value wins).
const SINGLE_VALUED: [usize; 2] = [7, 8];

/// `name` as Go's `pkix.Name.String()` writes it.
pub(crate) fn go_name_string(name: &X509Name<'_>) -> String {
    let mut standard: [Vec<String>; 9] = Default::default();
    let mut others: Vec<String> = Vec::new();
    for rdn in name.iter() {
        for atv in rdn.iter() {
            let oid = atv.attr_type().to_id_string();
            match STANDARD_ORDER.iter().position(|(id, _)| *id == oid) {
                Some(index) => {
                    // Go keeps only string values of the standard types.
                    if let Some(value) = string_value(atv.attr_value()) {
                        if SINGLE_VALUED.contains(&index) {
                            standard[index] = vec![value];
                        } else {
                            standard[index].push(value);
                        }
                    }
                }
                None => others.push(format!("{oid}=#{}", hex::encode(go_der(atv.attr_value())))),
            }
        }
    }
    let mut sequence = others;
    for (index, values) in standard.iter().enumerate() {
        if values.is_empty() {
            continue;
        }
        let (_, short) = STANDARD_ORDER[index];
        let rdn: Vec<String> = values
            .iter()
            .map(|value| format!("{short}={}", escape(value)))
            .collect();
        sequence.push(rdn.join("+"));
    }
    sequence.reverse();
    sequence.join(",")
}

/// The value of a string-typed attribute, as Go decodes it.
fn string_value(value: &Any<'_>) -> Option<String> {
    let data: &[u8] = value.data;
    match value.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::T61String
        | Tag::NumericString => Some(String::from_utf8_lossy(data).into_owned()),
        Tag::BmpString => {
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        _ => None,
    }
}

/// The DER Go writes for another attribute type's value: a string is
/// re-encoded (PrintableString when every character allows it, else
/// UTF8String); anything else keeps its own encoding.
fn go_der(value: &Any<'_>) -> Vec<u8> {
    match string_value(value) {
        Some(text) => {
            let tag = if text.bytes().all(is_printable) {
                0x13
            } else {
                0x0c
            };
            der_element(tag, text.as_bytes())
        }
        None => {
            let class_bits = match value.class() {
                Class::Universal => 0x00,
                Class::Application => 0x40,
                Class::ContextSpecific => 0x80,
                Class::Private => 0xc0,
            };
            let constructed = if value.header.is_constructed() {
                0x20
            } else {
                0
            };
            // Tag numbers above 30 take several bytes; none appear in names.
            let number = u8::try_from(value.tag().0).unwrap_or(0x1f) & 0x1f;
            der_element(class_bits | constructed | number, value.data)
        }
    }
}

/// An ASN.1 PrintableString character, as Go's encoder decides (no `*`,
/// no `&`).
fn is_printable(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&byte)
}

/// One DER element: identifier, definite length, content.
fn der_element(identifier: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![identifier];
    let length = content.len();
    if length < 0x80 {
        out.push(length as u8);
    } else {
        let bytes: Vec<u8> = length
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// RFC 2253 escaping as Go does it: `,+"\<>;` always, a space at either
/// end, a `#` at the start.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.len().saturating_sub(1);
    for (index, c) in value.char_indices() {
        let needs_escape = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => index == 0 || index == last,
            '#' => index == 0,
            _ => false,
        };
        if needs_escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_go_does() {
        assert_eq!(escape("a,b"), "a\\,b");
        assert_eq!(escape(" lead"), "\\ lead");
        assert_eq!(escape("trail "), "trail\\ ");
        assert_eq!(escape("#hash#"), "\\#hash#");
        assert_eq!(escape("mid dle"), "mid dle");
        assert_eq!(escape("q\"<>;+\\"), "q\\\"\\<\\>\\;\\+\\\\");
    }

    #[test]
    fn der_elements_have_long_lengths() {
        assert_eq!(der_element(0x0c, b"ab"), vec![0x0c, 2, b'a', b'b']);
        let long = vec![b'x'; 200];
        let element = der_element(0x13, &long);
        assert_eq!(&element[..3], &[0x13, 0x81, 200]);
        assert_eq!(element.len(), 203);
    }

    /// A certificate subject of these attributes, in this order, parsed
    /// back; `go_name_string` of it.
    #[cfg(feature = "sign")]
    fn go_string_of(attributes: Vec<(rcgen::DnType, rcgen::DnValue)>) -> String {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        let mut name = rcgen::DistinguishedName::new();
        for (kind, value) in attributes {
            name.push(kind, value);
        }
        params.distinguished_name = name;
        let cert = params.self_signed(&key).expect("certificate");
        let (_, parsed) = X509Certificate::from_der(cert.der()).expect("parsed");
        go_name_string(parsed.subject())
    }

    #[cfg(feature = "sign")]
    #[test]
    fn other_attributes_come_last_as_go_reencodes_them() {
        use rcgen::{DnType, DnValue};
        let email = DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]);
        let ia5 = |text: &str| DnValue::Ia5String(text.try_into().expect("ascii"));
        // Go decodes the IA5String and writes it back as a UTF8String ('@'
        // is not printable): 0c, length 7, "a@b.com".
        assert_eq!(
            go_string_of(vec![
                (email.clone(), ia5("a@b.com")),
                (DnType::CommonName, "x".into()),
            ]),
            "CN=x,1.2.840.113549.1.9.1=#0c0761406 22e636f6d".replace(' ', "")
        );
        // A printable value is written back as a PrintableString (13).
        assert_eq!(
            go_string_of(vec![(email, ia5("ab"))]),
            "1.2.840.113549.1.9.1=#13026162"
        );
        // Go's grouping order, whatever the certificate's (rcgen writes
        // one value per type, so several values of a type, joined by `+`,
        // are not shown here).
        assert_eq!(
            go_string_of(vec![
                (DnType::OrganizationalUnitName, "unit".into()),
                (DnType::CommonName, "name".into()),
                (DnType::CountryName, "US".into()),
                (DnType::LocalityName, "Town".into()),
                (DnType::OrganizationName, "Org".into()),
                (DnType::StateOrProvinceName, "State".into()),
            ]),
            "CN=name,OU=unit,O=Org,L=Town,ST=State,C=US"
        );
    }

    #[test]
    fn printable_excludes_at_and_star() {
        assert!(is_printable(b'a'));
        assert!(is_printable(b'?'));
        assert!(!is_printable(b'@'));
        assert!(!is_printable(b'*'));
        assert!(!is_printable(b'&'));
    }
}
