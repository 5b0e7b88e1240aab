//! boxoffice: the box office of an OTT service. See ARCHITECTURE.md for the map.

pub mod api;
pub mod app;
pub mod clock;
pub mod config;
pub mod core;
pub mod providers;
pub mod serve;
pub mod sim;
pub mod store;
