//! notation's COSE envelope (`application/cose`): a `COSE_Sign1_Tagged`
//! (coset), the Notary Project headers under text labels in the protected
//! header, the certificate chain under `x5chain` (label 33), unprotected
//! (or protected).

use coset::cbor::value::Value;
use coset::iana::{self, EnumI64 as _};
use coset::{
    CborSerializable as _, CoseSign1, Header, Label, RegisteredLabel, RegisteredLabelWithPrivate,
    TaggedCborSerializable as _,
};

use super::{
    AUTHENTIC_SIGNING_TIME, Algorithm, EXPIRY, Envelope, SIGNING_SCHEME, SIGNING_TIME,
    SigningScheme,
};
use crate::verdict::NotTrusted;

/// The `x5chain` header label (RFC 9360).
const X5CHAIN: i64 = 33;
/// The CBOR tag of an epoch-based date/time.
const EPOCH_TIME_TAG: u64 = 1;

/// Parses a COSE envelope.
pub(super) fn parse(envelope: &[u8]) -> Result<Envelope, NotTrusted> {
    let sign1 = CoseSign1::from_tagged_slice(envelope)
        .or_else(|_| CoseSign1::from_slice(envelope))
        .map_err(|e| NotTrusted::Malformed(format!("COSE_Sign1: {e}")))?;
    let protected = &sign1.protected.header;

    let algorithm = match &protected.alg {
        Some(RegisteredLabelWithPrivate::Assigned(alg)) => match alg {
            iana::Algorithm::PS256 => Algorithm::Ps256,
            iana::Algorithm::PS384 => Algorithm::Ps384,
            iana::Algorithm::PS512 => Algorithm::Ps512,
            iana::Algorithm::ES256 => Algorithm::Es256,
            iana::Algorithm::ES384 => Algorithm::Es384,
            iana::Algorithm::ES512 => Algorithm::Es512,
            other => {
                return Err(NotTrusted::UnsupportedAlgorithm(format!(
                    "COSE algorithm {}",
                    other.to_i64()
                )));
            }
        },
        Some(other) => {
            return Err(NotTrusted::UnsupportedAlgorithm(format!(
                "COSE algorithm {other:?}"
            )));
        }
        None => return Err(NotTrusted::Malformed("no algorithm header".to_owned())),
    };
    let critical = protected
        .crit
        .iter()
        .map(|label| match label {
            RegisteredLabelWithPrivate::Text(name) => Ok(name.clone()),
            other => Err(NotTrusted::UnsupportedCriticalHeader(format!("{other:?}"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let content_type = match &protected.content_type {
        Some(RegisteredLabel::Text(content_type)) => content_type.clone(),
        Some(RegisteredLabel::Assigned(format)) => {
            format!("CoAP content format {}", format.to_i64())
        }
        None => String::new(),
    };
    let scheme_name = match text_header(protected, SIGNING_SCHEME) {
        Some(Value::Text(name)) => name.clone(),
        Some(_) => {
            return Err(NotTrusted::Malformed(format!(
                "header \"{SIGNING_SCHEME}\" is not text"
            )));
        }
        None => {
            return Err(NotTrusted::Malformed(format!(
                "no \"{SIGNING_SCHEME}\" header"
            )));
        }
    };
    let certificate_chain = match x5chain(&sign1.unprotected).or_else(|| x5chain(protected)) {
        Some(chain) => chain?,
        None => Vec::new(),
    };
    let payload = sign1
        .payload
        .clone()
        .ok_or_else(|| NotTrusted::Malformed("detached payload".to_owned()))?;
    let protected_names = protected
        .rest
        .iter()
        .filter_map(|(label, _)| match label {
            Label::Text(name) => Some(name.clone()),
            Label::Int(_) => None,
        })
        .collect();

    Ok(Envelope {
        algorithm,
        content_type,
        scheme: SigningScheme::from_name(&scheme_name)?,
        signing_time: time_header(protected, SIGNING_TIME)?,
        authentic_signing_time: time_header(protected, AUTHENTIC_SIGNING_TIME)?,
        expiry: time_header(protected, EXPIRY)?,
        critical,
        protected_names,
        certificate_chain,
        signed_bytes: sign1.tbs_data(b""),
        signature: sign1.signature.clone(),
        payload,
    })
}

/// The value of a header with a text label.
fn text_header<'h>(header: &'h Header, name: &str) -> Option<&'h Value> {
    header.rest.iter().find_map(|(label, value)| match label {
        Label::Text(label) if label == name => Some(value),
        _ => None,
    })
}

/// A date/time header (tag 1 around seconds, or bare seconds), if present.
fn time_header(header: &Header, name: &str) -> Result<Option<i64>, NotTrusted> {
    let malformed = || NotTrusted::Malformed(format!("header \"{name}\" is not a date/time"));
    let Some(value) = text_header(header, name) else {
        return Ok(None);
    };
    let seconds = match value {
        Value::Tag(EPOCH_TIME_TAG, inner) => inner.as_ref(),
        other => other,
    };
    match seconds {
        Value::Integer(seconds) => i64::try_from(*seconds).map(Some).map_err(|_| malformed()),
        // Fractions are allowed, though the spec says not to write them.
        Value::Float(seconds) if seconds.is_finite() => Ok(Some(seconds.floor() as i64)),
        _ => Err(malformed()),
    }
}

/// The `x5chain` of a header: an array of DER certificates, or one.
fn x5chain(header: &Header) -> Option<Result<Vec<Vec<u8>>, NotTrusted>> {
    let value = header.rest.iter().find_map(|(label, value)| match label {
        Label::Int(X5CHAIN) => Some(value),
        _ => None,
    })?;
    Some(match value {
        Value::Bytes(cert) => Ok(vec![cert.clone()]),
        Value::Array(certs) => certs
            .iter()
            .map(|cert| match cert {
                Value::Bytes(cert) => Ok(cert.clone()),
                _ => Err(NotTrusted::Malformed(
                    "an x5chain entry is not a byte string".to_owned(),
                )),
            })
            .collect(),
        _ => Err(NotTrusted::Malformed(
            "x5chain is not a byte string array".to_owned(),
        )),
    })
}
