//! `--input NAME=VALUE | NAME=@file.npy | NAME=@file.csv:COLUMN | NAME=@file.json`.

use super::{json, npy};
use mpcflow_runtime::InputValue;
use std::path::Path;

/// Parses one `--input` argument into a name and a value.
pub fn parse(arg: &str) -> Result<(String, InputValue), String> {
    let (name, value) = arg.split_once('=').ok_or_else(|| {
        format!("--input `{arg}`: expected NAME=VALUE, NAME=@file.npy, NAME=@file.csv:COLUMN or NAME=@file.json")
    })?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("--input `{arg}`: the name before `=` is empty"));
    }
    let v = match value.strip_prefix('@') {
        None => {
            let parsed: serde_json::Value = serde_json::from_str(value.trim())
                .map_err(|_| format!("--input {name}: `{value}` is not a number or a JSON array of numbers"))?;
            json::parse_value(&parsed).map_err(|e| format!("--input {name}: {e}"))?
        }
        Some(file) => from_file(file).map_err(|e| format!("--input {name}: {e}"))?,
    };
    Ok((name.to_string(), v))
}

fn from_file(spec: &str) -> Result<InputValue, String> {
    if let Some((path, column)) = split_csv(spec) {
        return read_csv_column(Path::new(path), column);
    }
    let path = Path::new(spec);
    match path.extension().and_then(|e| e.to_str()) {
        Some("npy") => npy::read(path),
        Some("json") => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            json::parse_value(&v).map_err(|e| format!("{}: {e}", path.display()))
        }
        Some("csv") => Err(format!("{}: name the column: @{}:COLUMN", path.display(), path.display())),
        _ => Err(format!("{}: unknown file type (use .npy, .json or .csv:COLUMN)", path.display())),
    }
}

fn split_csv(spec: &str) -> Option<(&str, &str)> {
    let i = spec.find(".csv:")?;
    Some((&spec[..i + 4], &spec[i + 5..]))
}

/// One column of a CSV file with a header row, by header name or 0-based index.
pub fn read_csv_column(path: &Path, column: &str) -> Result<InputValue, String> {
    let mut rdr = csv::Reader::from_path(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let headers = rdr.headers().map_err(|e| format!("{}: {e}", path.display()))?.clone();
    let named: Vec<usize> = headers.iter().enumerate().filter(|(_, h)| h.trim() == column).map(|(i, _)| i).collect();
    if named.len() > 1 {
        return Err(format!(
            "{}: the header names column `{column}` {} times (columns {}): rename one, so it is clear which is meant",
            path.display(),
            named.len(),
            named.iter().map(|i| (i + 1).to_string()).collect::<Vec<_>>().join(" and ")
        ));
    }
    let idx = headers
        .iter()
        .position(|h| h.trim() == column)
        .or_else(|| column.parse::<usize>().ok().filter(|&i| i < headers.len()))
        .ok_or_else(|| {
            format!(
                "{}: no column `{column}` (columns: {})",
                path.display(),
                headers.iter().collect::<Vec<_>>().join(", ")
            )
        })?;
    let mut values = vec![];
    for (row, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| format!("{}: {e}", path.display()))?;
        let cell = rec.get(idx).unwrap_or("").trim();
        let v: f64 = cell
            .parse()
            .map_err(|_| format!("{}:{}: column `{column}`: `{cell}` is not a number", path.display(), row + 2))?;
        values.push(v);
    }
    Ok(InputValue::Real { shape: vec![values.len()], values })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_values() {
        assert_eq!(parse("a=5").unwrap(), ("a".into(), InputValue::Int { shape: vec![], values: vec![5] }));
        assert_eq!(parse("b=[1.5, 2]").unwrap().1, InputValue::Real { shape: vec![2], values: vec![1.5, 2.0] });
        assert!(parse("c").unwrap_err().contains("expected NAME=VALUE"));
        assert!(parse("c=abc").unwrap_err().contains("not a number"));
        assert!(parse("c=@x.txt").unwrap_err().contains("unknown file type"));
    }

    #[test]
    fn csv_columns() {
        let dir = std::env::temp_dir().join(format!("mpcflow-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.csv");
        std::fs::write(&p, "id,bp\n1,120.5\n2,141\n").unwrap();
        let spec = format!("x=@{}:bp", p.display());
        assert_eq!(parse(&spec).unwrap().1, InputValue::Real { shape: vec![2], values: vec![120.5, 141.0] });
        let bad = format!("x=@{}:pulse", p.display());
        assert!(parse(&bad).unwrap_err().contains("no column `pulse` (columns: id, bp)"));
        std::fs::write(&p, "id,bp\n1,high\n").unwrap();
        assert!(parse(&spec).unwrap_err().contains(":2: column `bp`: `high` is not a number"));
        std::fs::write(&p, "id,bp,bp\n1,120,130\n").unwrap();
        let e = parse(&spec).unwrap_err();
        assert!(e.contains("names column `bp` 2 times (columns 2 and 3)"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
