//! Integration tests of the peer link over a simulated network.

mod fuzz;
mod liveness;
mod security;
mod sim;
mod transfer;
