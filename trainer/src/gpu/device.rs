//! Where a run trains, as `--device` names it: `cpu` (the default), `cuda` (the first GPU) or
//! `cuda:N`.

use std::fmt;
use std::str::FromStr;

/// Where a run trains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Device {
    /// The CPU trainer, one shard of each batch per thread.
    #[default]
    Cpu,
    /// GPU `N` of the CUDA driver's numbering (`cuda` is `cuda:0`).
    Cuda(usize),
}

impl FromStr for Device {
    type Err = String;

    fn from_str(s: &str) -> Result<Device, String> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(Device::Cuda(n)),
                _ => Err(format!(
                    "'{s}' is not a device: use cpu, cuda or cuda:N (N = 0, 1, ...)"
                )),
            },
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_and_print() {
        assert_eq!("cpu".parse(), Ok(Device::Cpu));
        assert_eq!("cuda".parse(), Ok(Device::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(Device::Cuda(3)));
        assert_eq!(Device::Cuda(3).to_string(), "cuda:3");
        for bad in ["gpu", "cuda:", "cuda:-1", "cuda:x", "CUDA", ""] {
            let err = bad.parse::<Device>().unwrap_err();
            assert!(err.contains("cpu, cuda or cuda:N"), "{bad}: {err}");
        }
    }
}
