//! The inventory of image layers built here, in the formats images use:
//! one test binary, a module per area.

mod bad_input;
mod fixtures;
mod languages;
mod os_packages;
mod speed;
mod whiteouts;
