//! NumPy `.npy` files (format versions 1 and 2, C order, little endian): enough to read what
//! `numpy.save` writes for float, integer and boolean arrays, and to write outputs back.

use mpcflow_runtime::InputValue;
use mpcflow_sdk::{DType, FixedPoint, Tensor};
use std::io::Write;
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

/// Reads an array.
pub fn read(path: &Path) -> Result<InputValue, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses the bytes of a `.npy` file.
pub fn parse(bytes: &[u8]) -> Result<InputValue, String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a .npy file (bad magic)".into());
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = bytes.get(start..start + hlen).ok_or("truncated header")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
    let descr = field(header, "descr").ok_or("header has no 'descr'")?;
    let descr = descr.trim_start().trim_start_matches(['\'', '"']);
    let descr = descr[..descr.find(['\'', '"']).ok_or("malformed 'descr'")?].to_string();
    if field(header, "fortran_order").is_some_and(|f| f.trim().starts_with("True")) {
        return Err("Fortran-order arrays are not supported; save with numpy.ascontiguousarray".into());
    }
    let shape_txt = field(header, "shape").ok_or("header has no 'shape'")?;
    let shape_txt = shape_txt.trim().trim_start_matches('(');
    let shape_txt = &shape_txt[..shape_txt.find(')').ok_or("malformed shape")?];
    let shape: Vec<usize> = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| format!("bad dimension `{s}`")))
        .collect::<Result<_, _>>()?;
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or("shape too large")?;
    let data = &bytes[start + hlen..];
    let shape_txt = format!("{shape:?}");
    let need = |size: usize| match n.checked_mul(size) {
        Some(b) if data.len() == b => Ok(()),
        Some(b) if data.len() > b => Err(format!(
            "data holds {} bytes, {} more than shape {shape_txt} needs: the file has trailing bytes (is it \
             another array, or a file written twice?)",
            data.len(),
            data.len() - b
        )),
        _ => Err(format!("data holds {} bytes, too few for shape {shape_txt}", data.len())),
    };
    macro_rules! read_as {
        ($t:ty, $size:expr) => {{
            need($size)?;
            data.chunks_exact($size).take(n).map(|c| <$t>::from_le_bytes(c.try_into().unwrap_or([0; $size])))
        }};
    }
    Ok(match descr.as_str() {
        "<f8" => InputValue::Real { shape, values: read_as!(f64, 8).collect() },
        "<f4" => InputValue::Real { shape, values: read_as!(f32, 4).map(f64::from).collect() },
        "<i8" => InputValue::Int { shape, values: read_as!(i64, 8).collect() },
        "<i4" => InputValue::Int { shape, values: read_as!(i32, 4).map(i64::from).collect() },
        "<i2" => InputValue::Int { shape, values: read_as!(i16, 2).map(i64::from).collect() },
        "|i1" => InputValue::Int { shape, values: read_as!(i8, 1).map(i64::from).collect() },
        "|u1" | "|b1" => InputValue::Int { shape, values: read_as!(u8, 1).map(i64::from).collect() },
        other => {
            return Err(format!(
                "unsupported dtype '{other}' (use float64, float32, int64, int32, int16, int8, uint8 or bool)"
            ));
        }
    })
}

fn field<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("'{key}':");
    let i = header.find(&pat)? + pat.len();
    Some(&header[i..])
}

/// Writes a tensor: fixed as float64, int as int64, bit as bool.
pub fn write(path: &Path, t: &Tensor, fp: FixedPoint) -> std::io::Result<()> {
    let (descr, body): (&str, Vec<u8>) = match t.dtype {
        DType::Fixed => ("<f8", t.data.iter().flat_map(|&w| fp.decode(w).to_le_bytes()).collect()),
        DType::Int => ("<i8", t.data.iter().flat_map(|&w| (w as i64).to_le_bytes()).collect()),
        DType::Bit => ("|b1", t.data.iter().map(|&w| (w & 1) as u8).collect()),
    };
    write_raw(path, descr, &t.shape, &body)
}

/// Writes real numbers as float64, exactly.
pub fn write_f64(path: &Path, shape: &[usize], values: &[f64]) -> std::io::Result<()> {
    let body: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_raw(path, "<f8", shape, &body)
}

fn write_raw(path: &Path, descr: &str, shape: &[usize], body: &[u8]) -> std::io::Result<()> {
    let shape = match shape.len() {
        0 => "()".to_string(),
        1 => format!("({},)", shape[0]),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Pad so that the data starts on a 64-byte boundary, ending the header with a newline.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut f = std::fs::File::create(path)?;
    f.write_all(MAGIC)?;
    f.write_all(&[1, 0])?;
    f.write_all(&(header.len() as u16).to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    f.write_all(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_errors() {
        let dir = std::env::temp_dir().join(format!("mpcflow-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fp = FixedPoint::default();
        let t = Tensor::from_f64(DType::Fixed, vec![2, 3], &[0.5, -1.0, 2.0, 3.25, 0.0, -7.5], fp).unwrap();
        let p = dir.join("a.npy");
        write(&p, &t, fp).unwrap();
        let back = read(&p).unwrap();
        assert_eq!(back, InputValue::Real { shape: vec![2, 3], values: vec![0.5, -1.0, 2.0, 3.25, 0.0, -7.5] });
        let s = Tensor { dtype: DType::Int, shape: vec![], data: vec![(-4i64) as u64] };
        write(&p, &s, fp).unwrap();
        assert_eq!(read(&p).unwrap(), InputValue::Int { shape: vec![], values: vec![-4] });
        assert!(parse(b"hello").unwrap_err().contains("bad magic"));
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.truncate(bytes.len() - 3);
        assert!(parse(&bytes).unwrap_err().contains("too few"));
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.extend_from_slice(&[0; 8]);
        assert!(parse(&bytes).unwrap_err().contains("8 more than shape [] needs: the file has trailing bytes"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
