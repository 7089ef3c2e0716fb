//! Response gates applied before extraction (placeholder until implemented).

/// Which gates run (default: none).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GateConfig {}

/// Why a response failed a gate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GateFailure {}

/// Runs the configured gates over the whole response.
pub fn check(_response: &str, _config: &GateConfig) -> Result<(), GateFailure> {
    Ok(())
}
