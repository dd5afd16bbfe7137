//! Outbound clients for services outside Guildhall, each tested against a
//! local fake over real HTTP.

pub mod chat;
pub mod github;
