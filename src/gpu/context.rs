//! The device and queue the engine runs on: the caller's own, or one picked by
//! [`GpuContext::headless`].

use crate::error::{Error, Result};

/// A wgpu device and queue (cheap clones of the caller's, or the engine's own), with what is
/// known of the adapter.
#[derive(Clone, Debug)]
pub struct GpuContext {
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// The adapter, where known (a caller's device comes without it).
    pub adapter: Option<wgpu::AdapterInfo>,
}

/// The adapters this machine offers, for the backends `WGPU_BACKEND` allows.
pub fn adapters() -> Vec<wgpu::Adapter> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all())))
}

/// A one-line description of an adapter: name, backend, type and driver.
pub fn describe(info: &wgpu::AdapterInfo) -> String {
    format!("{} ({:?}, {:?}, {} {})", info.name, info.backend, info.device_type, info.driver, info.driver_info)
}

/// Picks the adapter `auto` and `headless()` use: the first whose name contains
/// `WGPU_ADAPTER_NAME` (case-insensitive) if that is set, else the one wgpu prefers for
/// `WGPU_POWER_PREF` (default: high performance).
pub fn pick_adapter() -> Result<wgpu::Adapter> {
    pick_adapter_named(std::env::var("WGPU_ADAPTER_NAME").ok().as_deref())
}

/// As [`pick_adapter`], with the name filter given instead of read from `WGPU_ADAPTER_NAME`.
pub fn pick_adapter_named(name: Option<&str>) -> Result<wgpu::Adapter> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    if let Some(name) = name {
        let all = pollster::block_on(instance.enumerate_adapters(backends));
        let names: Vec<String> = all.iter().map(|a| a.get_info().name).collect();
        return all.into_iter().find(|a| a.get_info().name.to_lowercase().contains(&name.to_lowercase())).ok_or_else(
            || Error::NoAdapter(format!(" whose name contains WGPU_ADAPTER_NAME={name:?} (found: {names:?})")),
        );
    }
    let options = wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::from_env().unwrap_or(wgpu::PowerPreference::HighPerformance),
        ..Default::default()
    };
    pollster::block_on(instance.request_adapter(&options))
        .map_err(|e| Error::NoAdapter(format!(" for backends {backends:?}: {e}")))
}

impl GpuContext {
    /// Wraps the caller's device and queue; the engine records into the caller's encoders
    /// and never installs callbacks on the caller's device.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Self {
        GpuContext { device, queue, adapter: None }
    }

    /// A device of its own on the adapter [`pick_adapter`] chooses, with the adapter's limits
    /// for buffer sizes and dispatch counts (so large networks fit) and nothing else.
    pub fn headless() -> Result<Self> {
        Self::on_adapter(pick_adapter()?)
    }

    /// A device of its own on `adapter`, as [`GpuContext::headless`] makes it.
    pub fn on_adapter(adapter: wgpu::Adapter) -> Result<Self> {
        let al = adapter.limits();
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: al.max_storage_buffer_binding_size,
            max_buffer_size: al.max_buffer_size,
            max_compute_workgroups_per_dimension: al.max_compute_workgroups_per_dimension,
            ..wgpu::Limits::default()
        }
        .using_alignment(al.clone());
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("localprop"),
            required_features: wgpu::Features::empty(),
            required_limits: limits,
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::Device(format!("request_device on {}: {e}", describe(&adapter.get_info()))))?;
        device.on_uncaptured_error(std::sync::Arc::new(|e: wgpu::Error| log::error!("uncaptured wgpu error: {e}")));
        Ok(GpuContext { device, queue, adapter: Some(adapter.get_info()) })
    }

    /// Runs `f` inside validation and out-of-memory error scopes and returns the first
    /// error, attributed to `what`.
    pub fn checked<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = f();
        let errors = [pollster::block_on(validation.pop()), pollster::block_on(oom.pop())];
        match errors.into_iter().flatten().next() {
            None => Ok(value),
            Some(e) => Err(Error::Gpu { kernel: what.to_string(), message: e.to_string() }),
        }
    }
}
