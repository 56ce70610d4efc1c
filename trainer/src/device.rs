//! Where training runs: one of burn's backends, chosen at run time by `edgegen train …
//! --device`. burn 0.22's tensors carry their device (`Device::flex()`, `Device::vulkan(..)`,
//! `Device::cuda(n)`), so the model, loss, checkpoint and export code is the same for every
//! backend; a backend other than the CPU's is compiled in only with its cargo feature
//! (`vulkan`, `wgpu`, `cuda`), and the default build stays CPU-only.

use anyhow::{bail, Result};
use burn::prelude::*;

/// A training device, as `--device` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// burn's `flex` backend on the CPU (the default; both cores through rayon).
    #[default]
    Cpu,
    /// Vulkan through wgpu (SPIR-V): `vulkan` (the best adapter), `vulkan:N` (discrete GPU N),
    /// `vulkan:cpu` (a CPU adapter: Mesa's lavapipe).
    Vulkan(Adapter),
    /// wgpu on whichever graphics API the machine offers: `wgpu`, `wgpu:N`, `wgpu:cpu`.
    Wgpu(Adapter),
    /// CUDA: `cuda` (device 0) or `cuda:N`.
    Cuda(usize),
}

/// The devices a run trains on (`--device a,b,…`): one, or several for data-parallel steps
/// (each takes a contiguous share of the batch; the first holds the model and the optimizer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Devices(pub Vec<DeviceChoice>);

impl Default for Devices {
    fn default() -> Self {
        Devices(vec![DeviceChoice::Cpu])
    }
}

impl Devices {
    /// One device.
    pub fn one(d: DeviceChoice) -> Devices {
        Devices(vec![d])
    }

    /// Parses a comma-separated list of [`DeviceChoice::parse`] names.
    pub fn parse(s: &str) -> Result<Devices> {
        let v = s.split(',').map(|d| DeviceChoice::parse(d.trim())).collect::<Result<Vec<_>>>()?;
        if v.is_empty() {
            bail!("--device: name at least one device");
        }
        Ok(Devices(v))
    }

    /// The first device (the model's and the optimizer's).
    pub fn main(&self) -> Result<Device> {
        self.0.first().map_or(Ok(Device::flex()), DeviceChoice::device)
    }

    /// The burn devices, in order.
    pub fn devices(&self) -> Result<Vec<Device>> {
        self.0.iter().map(DeviceChoice::device).collect()
    }
}

impl std::fmt::Display for Devices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&names.join(","))
    }
}

/// Which adapter of a wgpu backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapter {
    /// wgpu's choice (a high-power GPU first; `CUBECL_WGPU_DEFAULT_DEVICE` overrides it).
    Best,
    /// Discrete GPU `N`.
    Discrete(usize),
    /// A CPU adapter (software rendering, e.g. lavapipe).
    Cpu,
}

impl DeviceChoice {
    /// Parses `cpu`, `vulkan[:N|:cpu]`, `wgpu[:N|:cpu]`, `cuda[:N]`.
    pub fn parse(s: &str) -> Result<DeviceChoice> {
        let (name, sel) = match s.split_once(':') {
            Some((n, sel)) => (n, Some(sel)),
            None => (s, None),
        };
        let adapter = |sel: Option<&str>| -> Result<Adapter> {
            Ok(match sel {
                None => Adapter::Best,
                Some("cpu") => Adapter::Cpu,
                Some(n) => {
                    Adapter::Discrete(n.parse().map_err(|_| anyhow::anyhow!("--device {s}: after `{name}:` give a GPU index or `cpu`"))?)
                }
            })
        };
        Ok(match name {
            "cpu" | "flex" if sel.is_none() => DeviceChoice::Cpu,
            "vulkan" => DeviceChoice::Vulkan(adapter(sel)?),
            "wgpu" => DeviceChoice::Wgpu(adapter(sel)?),
            "cuda" => DeviceChoice::Cuda(match sel {
                None => 0,
                Some(n) => n.parse().map_err(|_| anyhow::anyhow!("--device {s}: after `cuda:` give a GPU index"))?,
            }),
            _ => bail!("--device {s}: expected cpu, vulkan[:N|:cpu], wgpu[:N|:cpu] or cuda[:N]"),
        })
    }

    /// The backend's name, as its cargo feature and `--device` spell it.
    pub fn backend(&self) -> &'static str {
        match self {
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Vulkan(_) => "vulkan",
            DeviceChoice::Wgpu(_) => "wgpu",
            DeviceChoice::Cuda(_) => "cuda",
        }
    }

    /// The burn device (not differentiable; training calls `.autodiff()` on it). An error
    /// when this build lacks the backend, saying how to build it.
    pub fn device(&self) -> Result<Device> {
        match *self {
            DeviceChoice::Cpu => Ok(Device::flex()),
            #[cfg(feature = "vulkan")]
            DeviceChoice::Vulkan(a) => Ok(Device::vulkan(a.kind())),
            #[cfg(feature = "wgpu")]
            DeviceChoice::Wgpu(a) => Ok(Device::wgpu(a.kind())),
            #[cfg(feature = "cuda")]
            DeviceChoice::Cuda(n) => Ok(Device::cuda(n)),
            #[allow(unreachable_patterns)]
            other => bail!(
                "--device {other}: this edgegen was built without the {b} backend; build it with \
                 `cargo run --release --features {b} --bin edgegen -- train …` (see docs/gpu.md)",
                b = other.backend()
            ),
        }
    }
}

impl Adapter {
    #[cfg(any(feature = "vulkan", feature = "wgpu"))]
    fn kind(self) -> burn::tensor::DeviceKind {
        use burn::tensor::DeviceKind;
        match self {
            Adapter::Best => DeviceKind::DefaultDevice,
            Adapter::Discrete(n) => DeviceKind::DiscreteGpu(n),
            Adapter::Cpu => DeviceKind::Cpu,
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let adapter = |a: &Adapter| match a {
            Adapter::Best => String::new(),
            Adapter::Discrete(n) => format!(":{n}"),
            Adapter::Cpu => ":cpu".into(),
        };
        match self {
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Vulkan(a) => write!(f, "vulkan{}", adapter(a)),
            DeviceChoice::Wgpu(a) => write!(f, "wgpu{}", adapter(a)),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// The backends this build has, for `--help` and error messages.
pub fn built_backends() -> Vec<&'static str> {
    let mut v = vec!["cpu"];
    if cfg!(feature = "vulkan") {
        v.push("vulkan");
    }
    if cfg!(feature = "wgpu") {
        v.push("wgpu");
    }
    if cfg!(feature = "cuda") {
        v.push("cuda");
    }
    v
}

/// The device `module`'s parameters live on (the CPU's for a module without any): where
/// evaluation puts its inputs, so a model trained on a GPU is evaluated there.
pub fn of<M: burn::module::Module>(module: &M) -> Device {
    module.devices().into_iter().next().unwrap_or_else(Device::flex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse_and_print_back() {
        for s in ["cpu", "vulkan", "vulkan:1", "vulkan:cpu", "wgpu", "wgpu:cpu", "cuda:0", "cuda:3"] {
            assert_eq!(DeviceChoice::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(DeviceChoice::parse("cuda").unwrap(), DeviceChoice::Cuda(0));
        assert_eq!(DeviceChoice::parse("flex").unwrap(), DeviceChoice::Cpu);
        for bad in ["gpu", "cpu:1", "vulkan:x", "cuda:cpu", "", "metal"] {
            let e = DeviceChoice::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--device"), "{bad}: {e}");
        }
        assert_eq!(Devices::parse("cuda:0, cuda:1").unwrap().to_string(), "cuda:0,cuda:1");
        assert_eq!(Devices::parse("cpu").unwrap(), Devices::default());
        assert!(Devices::parse("cpu,,cpu").is_err());
    }

    #[test]
    fn a_backend_not_built_is_an_error_naming_its_feature() {
        assert!(DeviceChoice::Cpu.device().is_ok());
        for d in [DeviceChoice::Vulkan(Adapter::Cpu), DeviceChoice::Wgpu(Adapter::Best), DeviceChoice::Cuda(0)] {
            if built_backends().contains(&d.backend()) {
                continue;
            }
            let e = d.device().unwrap_err().to_string();
            assert!(e.contains(&format!("--features {}", d.backend())), "{e}");
        }
    }
}
