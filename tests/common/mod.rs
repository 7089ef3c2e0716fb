//! Helpers shared by the end-to-end tests that start long-lived `rlcs` processes.

use std::process::Child;

/// Kills the child when the test ends, however it ends.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
