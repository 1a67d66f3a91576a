//! berth-trust's tests: signatures made as cosign and notation make them
//! (feature `sign`), verified against uploaded keys and certificates.

mod author;
mod cosign_bundle;
mod cosign_simple;
mod material;
mod never_panics;
mod notation;
mod notation_refused;
mod support;
