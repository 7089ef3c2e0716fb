//! GPU discovery and replica placement.
//!
//! [`discover`] lists CUDA devices with their free memory through the CUDA driver,
//! loaded at run time (feature `gpu-discovery`, which pulls in `cudarc` with dynamic
//! loading: the binary builds and runs on machines without CUDA, where it finds no
//! GPU). [`place`] assigns replicas to devices by free memory; it is pure, so its
//! rules are tested on any machine.

use serde::Serialize;

/// One CUDA device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GpuInfo {
    /// Device ordinal (`cuda:N`).
    pub ordinal: usize,
    /// Device name.
    pub name: String,
    /// Free memory in bytes when discovered.
    pub free_bytes: u64,
    /// Total memory in bytes.
    pub total_bytes: u64,
}

/// Assigns `replicas` replicas needing `bytes_each` bytes to `gpus`: each replica in
/// turn goes to the device with the most free memory left after the replicas
/// already placed (ties: the lower ordinal). Returns one ordinal per replica, or
/// `None` for replicas that fit on no device (they run on the CPU).
pub fn place(replicas: usize, bytes_each: u64, gpus: &[GpuInfo]) -> Vec<Option<usize>> {
    let mut free: Vec<(usize, u64)> = gpus.iter().map(|g| (g.ordinal, g.free_bytes)).collect();
    (0..replicas)
        .map(|_| {
            let best = free
                .iter_mut()
                .filter(|(_, f)| *f >= bytes_each)
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))?;
            best.1 -= bytes_each;
            Some(best.0)
        })
        .collect()
}

/// Devices for `policies` policies (a learner and its replicas, in build order)
/// under the configured device name: an explicit name is used for all; `auto`
/// places them by free memory on the discovered GPUs (each needing `bytes_each`),
/// those that fit nowhere on the CPU, and stays `auto` (libtorch's choice) when no
/// GPU list is available.
pub fn plan_devices(
    device: &str,
    policies: usize,
    bytes_each: u64,
    gpus: Option<&[GpuInfo]>,
) -> Vec<String> {
    match (device, gpus) {
        ("auto", Some(gpus)) if !gpus.is_empty() => place(policies.max(1), bytes_each, gpus)
            .into_iter()
            .map(|p| p.map_or_else(|| "cpu".to_string(), |o| format!("cuda:{o}")))
            .collect(),
        (d, _) => vec![d.to_string(); policies.max(1)],
    }
}

/// The CUDA devices of this machine with their free memory; empty when the CUDA
/// driver library is absent or reports no device.
#[cfg(feature = "gpu-discovery")]
pub fn discover() -> Result<Vec<GpuInfo>, String> {
    use cudarc::driver::{result, safe::CudaContext, sys};
    // Without the driver library, cudarc's lazily loaded functions would panic.
    if !unsafe { sys::is_culib_present() } {
        return Ok(Vec::new());
    }
    let count = match CudaContext::device_count() {
        Ok(n) => n.max(0) as usize,
        // No device or no usable driver: no GPU, not an error.
        Err(_) => return Ok(Vec::new()),
    };
    (0..count)
        .map(|ordinal| {
            let ctx = CudaContext::new(ordinal).map_err(|e| format!("cuda:{ordinal}: {e}"))?;
            let name = ctx.name().map_err(|e| format!("cuda:{ordinal}: {e}"))?;
            let (free, total) =
                result::mem_get_info().map_err(|e| format!("cuda:{ordinal}: {e}"))?;
            Ok(GpuInfo {
                ordinal,
                name,
                free_bytes: free as u64,
                total_bytes: total as u64,
            })
        })
        .collect()
}

/// Built without `gpu-discovery`: no device list (libtorch still finds CUDA devices
/// for `device = "auto"`, placing every replica on the first).
#[cfg(not(feature = "gpu-discovery"))]
pub fn discover() -> Result<Vec<GpuInfo>, String> {
    Err("built without the `gpu-discovery` feature".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(ordinal: usize, free_gib: u64) -> GpuInfo {
        GpuInfo {
            ordinal,
            name: format!("gpu{ordinal}"),
            free_bytes: free_gib << 30,
            total_bytes: 80 << 30,
        }
    }

    #[test]
    fn replicas_go_where_most_memory_is_free() {
        let gpus = [gpu(0, 10), gpu(1, 30), gpu(2, 30)];
        // 1 → 2 by ordinal tie-break, then the fuller one loses its lead, and so on.
        let p = place(5, 10 << 30, &gpus);
        assert_eq!(p, vec![Some(1), Some(2), Some(1), Some(2), Some(0)]);
        // Nothing fits: CPU.
        assert_eq!(place(2, 40 << 30, &gpus), vec![None, None]);
        assert_eq!(place(3, 1, &[]), vec![None, None, None]);
        // Capacity runs out part-way.
        assert_eq!(place(3, 25 << 30, &gpus), vec![Some(1), Some(2), None]);
    }

    #[test]
    fn plans_name_a_device_per_policy() {
        let gpus = [gpu(0, 10), gpu(1, 30)];
        assert_eq!(
            plan_devices("auto", 3, 12 << 30, Some(&gpus)),
            vec!["cuda:1", "cuda:1", "cpu"]
        );
        assert_eq!(
            plan_devices("cuda:1", 2, 1, Some(&gpus)),
            vec!["cuda:1", "cuda:1"]
        );
        assert_eq!(plan_devices("auto", 2, 1, None), vec!["auto", "auto"]);
        assert_eq!(plan_devices("auto", 2, 1, Some(&[])), vec!["auto", "auto"]);
    }

    #[test]
    fn discovery_never_panics() {
        // On a machine without CUDA this is an empty list (or, without the feature, an
        // error saying so); with GPUs every entry has memory.
        if let Ok(gpus) = discover() {
            for g in gpus {
                assert!(g.total_bytes >= g.free_bytes && g.total_bytes > 0);
            }
        }
    }
}
