//! zot's sync extension (`extensions.sync`): mirroring upstream
//! registries, periodically and on demand. `content` holds the pure
//! matching rules (which upstream repositories, tags and platforms, under
//! which local names); `upstream_files` reads the files the config names
//! (the credentials file and each registry's certificate directory).

pub mod content;
pub mod upstream_files;
