//! The libtorch runtime this build links against.

use serde::Serialize;

/// What libtorch reports about the machine.
#[derive(Debug, Clone, Serialize)]
pub struct TorchInfo {
    /// Whether a CUDA device is usable.
    pub cuda_available: bool,
    /// Number of CUDA devices.
    pub cuda_devices: i64,
    /// Intra-op CPU threads.
    pub cpu_threads: i32,
    /// Result of a small matmul on the default device (a smoke test of the link).
    pub matmul_check: f64,
}

/// Queries libtorch and runs a tiny computation to prove the library loads.
pub fn runtime_info() -> TorchInfo {
    let device = tch::Device::cuda_if_available();
    let a = tch::Tensor::ones([8, 8], (tch::Kind::Float, device));
    let check = a.matmul(&a).sum(tch::Kind::Double).double_value(&[]);
    TorchInfo {
        cuda_available: tch::Cuda::is_available(),
        cuda_devices: tch::Cuda::device_count(),
        cpu_threads: tch::get_num_threads(),
        matmul_check: check,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn libtorch_computes() {
        // 8x8 ones squared is 8 everywhere: 64 entries of 8.
        assert_eq!(super::runtime_info().matmul_check, 512.0);
    }
}
