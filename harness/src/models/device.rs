//! `--device cpu|cuda:N|metal`: parsed once, validated against the features this binary
//! was built with.

use candle_core::Device;

use crate::error::{Error, Result};

/// Parse a device name. `cuda` and `metal` need the matching cargo feature.
pub fn parse_device(name: &str) -> Result<Device> {
    let bad = |msg: String| Error::input(format!("--device {name}"), msg);
    match name {
        "cpu" => Ok(Device::Cpu),
        "metal" => {
            if !cfg!(feature = "metal") {
                return Err(bad("this binary was built without the `metal` feature".into()));
            }
            Device::new_metal(0).map_err(|e| bad(e.to_string()))
        }
        _ => {
            let Some(ordinal) = name.strip_prefix("cuda") else {
                return Err(bad("expected cpu, cuda:N or metal".into()));
            };
            let ordinal = match ordinal.strip_prefix(':') {
                None if ordinal.is_empty() => 0,
                Some(n) => n.parse::<usize>().map_err(|_| bad(format!("`{n}` is not a device number")))?,
                None => return Err(bad("expected cpu, cuda:N or metal".into())),
            };
            if !cfg!(feature = "cuda") {
                return Err(bad("this binary was built without the `cuda` feature".into()));
            }
            Device::new_cuda(ordinal).map_err(|e| bad(e.to_string()))
        }
    }
}

/// A stable, printable name for a device, recorded in run records.
pub fn device_name(device: &Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => "cuda".into(),
        Device::Metal(_) => "metal".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_parses_and_nonsense_is_an_input_error() {
        assert!(matches!(parse_device("cpu"), Ok(Device::Cpu)));
        let e = parse_device("tpu").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("--device tpu"));
        if !cfg!(feature = "cuda") {
            assert!(parse_device("cuda:0").unwrap_err().to_string().contains("feature"));
        }
    }
}
