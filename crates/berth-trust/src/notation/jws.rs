//! notation's JWS envelope (`application/jose+json`): flattened JWS JSON
//! serialization, the Notary Project headers in the protected header, the
//! certificate chain (`x5c`) in the unprotected one.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{
    AUTHENTIC_SIGNING_TIME, Algorithm, EXPIRY, Envelope, SIGNING_SCHEME, SIGNING_TIME,
    SigningScheme,
};
use crate::verdict::NotTrusted;

/// JWS's base64url, tolerating padding.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// `x5c`'s standard base64.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Deserialize)]
struct Flattened {
    payload: String,
    protected: String,
    #[serde(default)]
    header: Unprotected,
    signature: String,
}

#[derive(Deserialize, Default)]
struct Unprotected {
    #[serde(default)]
    x5c: Vec<String>,
}

/// Parses a JWS envelope.
pub(super) fn parse(envelope: &[u8]) -> Result<Envelope, NotTrusted> {
    let jws: Flattened = serde_json::from_slice(envelope)
        .map_err(|e| NotTrusted::Malformed(format!("JWS envelope: {e}")))?;
    let protected_json = BASE64URL
        .decode(&jws.protected)
        .map_err(|_| NotTrusted::Malformed("the protected header is not base64url".to_owned()))?;
    let protected: Map<String, Value> = serde_json::from_slice(&protected_json)
        .map_err(|e| NotTrusted::Malformed(format!("protected header: {e}")))?;
    let payload = BASE64URL
        .decode(&jws.payload)
        .map_err(|_| NotTrusted::Malformed("the payload is not base64url".to_owned()))?;
    let signature = BASE64URL
        .decode(&jws.signature)
        .map_err(|_| NotTrusted::Malformed("the signature is not base64url".to_owned()))?;
    let certificate_chain = jws
        .header
        .x5c
        .iter()
        .map(|cert| BASE64.decode(cert))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| NotTrusted::Malformed("an x5c certificate is not base64".to_owned()))?;

    let algorithm = match text(&protected, "alg")?.as_deref() {
        Some("PS256") => Algorithm::Ps256,
        Some("PS384") => Algorithm::Ps384,
        Some("PS512") => Algorithm::Ps512,
        Some("ES256") => Algorithm::Es256,
        Some("ES384") => Algorithm::Es384,
        Some("ES512") => Algorithm::Es512,
        Some(other) => {
            return Err(NotTrusted::UnsupportedAlgorithm(format!(
                "JWS algorithm \"{other}\""
            )));
        }
        None => return Err(NotTrusted::Malformed("no \"alg\" header".to_owned())),
    };
    let critical = match protected.get("crit") {
        Some(Value::Array(names)) => names
            .iter()
            .map(|name| name.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| NotTrusted::Malformed("\"crit\" holds a non-string".to_owned()))?,
        Some(_) => return Err(NotTrusted::Malformed("\"crit\" is not a list".to_owned())),
        None => Vec::new(),
    };
    let scheme_name = text(&protected, SIGNING_SCHEME)?
        .ok_or_else(|| NotTrusted::Malformed(format!("no \"{SIGNING_SCHEME}\" header")))?;

    Ok(Envelope {
        algorithm,
        content_type: text(&protected, "cty")?.unwrap_or_default(),
        scheme: SigningScheme::from_name(&scheme_name)?,
        signing_time: time(&protected, SIGNING_TIME)?,
        authentic_signing_time: time(&protected, AUTHENTIC_SIGNING_TIME)?,
        expiry: time(&protected, EXPIRY)?,
        critical,
        protected_names: protected.keys().cloned().collect(),
        certificate_chain,
        payload,
        signed_bytes: format!("{}.{}", jws.protected, jws.payload).into_bytes(),
        signature,
    })
}

/// A string header, if present.
fn text(header: &Map<String, Value>, name: &str) -> Result<Option<String>, NotTrusted> {
    match header.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(NotTrusted::Malformed(format!(
            "header \"{name}\" is not a string"
        ))),
    }
}

/// An RFC 3339 time header, if present, in seconds since the epoch.
fn time(header: &Map<String, Value>, name: &str) -> Result<Option<i64>, NotTrusted> {
    let Some(value) = text(header, name)? else {
        return Ok(None);
    };
    time::OffsetDateTime::parse(&value, &time::format_description::well_known::Rfc3339)
        .map(|at| Some(at.unix_timestamp()))
        .map_err(|_| NotTrusted::Malformed(format!("header \"{name}\" is not an RFC 3339 time")))
}
