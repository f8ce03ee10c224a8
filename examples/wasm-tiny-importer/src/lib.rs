//! A WASM importer plugin for `tiny`, a text format of small dense networks:
//!
//! ```text
//! tiny 1                 # format and version
//! input features 4       # the input: a name and its width (one row per run)
//! dense 4 3              # a dense layer IN -> OUT, followed by
//! weights 0.1 0.2 ...    #   IN*OUT weights, row-major (IN rows of OUT)
//! bias 0 0.5 -1          #   OUT biases
//! relu                   # an activation
//! dense 3 2
//! weights ...
//! bias ...
//! ```
//!
//! The model becomes matmul/add/relu nodes; the weights and biases become the model owner's
//! private inputs. Errors name the line.

use mpcflow_sdk::graph::{ConstSpec, NodeSpec};
use mpcflow_sdk::importer::{ImportedModel, Importer};
use mpcflow_sdk::{DType, Error, Op, Result};

/// The importer.
pub struct Tiny;

/// Parses the numbers after a keyword.
fn numbers(line_no: usize, rest: &[&str]) -> Result<Vec<f64>> {
    rest.iter()
        .map(|w| {
            w.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| Error::invalid(format!("line {line_no}: `{w}` is not a number")))
        })
        .collect()
}

fn size(line_no: usize, word: Option<&&str>, what: &str) -> Result<usize> {
    word.and_then(|w| w.parse::<usize>().ok())
        .filter(|&n| (1..=1 << 16).contains(&n))
        .ok_or_else(|| Error::invalid(format!("line {line_no}: expected {what} (1 to 65536)")))
}

impl Importer for Tiny {
    fn name(&self) -> &str {
        "tiny"
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn import(&self, bytes: &[u8]) -> Result<ImportedModel> {
        let text = std::str::from_utf8(bytes).map_err(|_| Error::invalid("a tiny model is UTF-8 text"))?;
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.split('#').next().unwrap_or_default().split_whitespace().collect::<Vec<_>>()))
            .filter(|(_, words)| !words.is_empty());
        match lines.next() {
            Some((_, w)) if w == ["tiny", "1"] => {}
            Some((n, _)) => return Err(Error::invalid(format!("line {n}: expected the header `tiny 1`"))),
            None => return Err(Error::invalid("the file is empty; expected the header `tiny 1`")),
        }
        let mut model = ImportedModel::default();
        let mut current: Option<(String, usize)> = None; // tensor name and width
        let mut layers = 0;
        while let Some((n, words)) = lines.next() {
            match words[0] {
                "input" if current.is_none() => {
                    let name = words.get(1).ok_or_else(|| Error::invalid(format!("line {n}: `input NAME WIDTH`")))?;
                    let width = size(n, words.get(2), "the input's width")?;
                    model.inputs.push((name.to_string(), DType::Fixed, vec![1, width]));
                    current = Some((name.to_string(), width));
                }
                "input" => return Err(Error::invalid(format!("line {n}: a tiny model has one input, first"))),
                "dense" => {
                    let (x, width) =
                        current.clone().ok_or_else(|| Error::invalid(format!("line {n}: `input` comes first")))?;
                    let (inp, out) = (size(n, words.get(1), "IN")?, size(n, words.get(2), "OUT")?);
                    if inp != width {
                        return Err(Error::invalid(format!(
                            "line {n}: `dense {inp} {out}` takes {inp} values but the previous layer gives {width}"
                        )));
                    }
                    let mut take = |keyword: &str, count: usize| -> Result<Vec<f64>> {
                        let (m, w) = lines.next().ok_or_else(|| {
                            Error::invalid(format!("line {n}: `dense` needs a `{keyword}` line after it"))
                        })?;
                        if w[0] != keyword {
                            return Err(Error::invalid(format!("line {m}: expected `{keyword}`, found `{}`", w[0])));
                        }
                        let v = numbers(m, &w[1..])?;
                        if v.len() != count {
                            return Err(Error::invalid(format!(
                                "line {m}: `{keyword}` of `dense {inp} {out}` needs {count} numbers, found {}",
                                v.len()
                            )));
                        }
                        Ok(v)
                    };
                    let weights = take("weights", inp * out)?;
                    let bias = take("bias", out)?;
                    let (w, b) = (format!("dense{layers}_weights"), format!("dense{layers}_bias"));
                    model.weights.push(ConstSpec {
                        name: w.clone(),
                        dtype: DType::Fixed,
                        shape: vec![inp, out],
                        values: weights,
                    });
                    model.weights.push(ConstSpec {
                        name: b.clone(),
                        dtype: DType::Fixed,
                        shape: vec![out],
                        values: bias,
                    });
                    let mm = format!("dense{layers}_mm");
                    model.nodes.push(NodeSpec::new(mm.clone(), Op::Matmul, vec![x, w]));
                    let y = format!("dense{layers}");
                    model.nodes.push(NodeSpec::new(y.clone(), Op::Add, vec![mm, b]));
                    current = Some((y, out));
                    layers += 1;
                }
                "relu" => {
                    let (x, width) =
                        current.clone().ok_or_else(|| Error::invalid(format!("line {n}: `input` comes first")))?;
                    let y = format!("relu{}", model.nodes.len());
                    model.nodes.push(NodeSpec::new(y.clone(), Op::Relu, vec![x]));
                    current = Some((y, width));
                }
                other => {
                    return Err(Error::invalid(format!(
                        "line {n}: unknown keyword `{other}` (expected input, dense, relu)"
                    )));
                }
            }
        }
        if model.nodes.is_empty() {
            return Err(Error::invalid("the model has no layers"));
        }
        model.output = current.map(|c| c.0).unwrap_or_default();
        Ok(model)
    }
}

mpcflow_sdk::export_wasm_plugins! {
    importers: [Tiny],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_two_layer_model_becomes_five_nodes_and_errors_name_the_line() {
        let m = Tiny
            .import(
                b"tiny 1\ninput x 2\ndense 2 2\nweights 1 0 0 1\nbias 0 0\nrelu\ndense 2 1\nweights 1 1\nbias 0.5\n",
            )
            .unwrap();
        assert_eq!(m.nodes.len(), 5);
        assert_eq!(m.weights.len(), 4);
        assert_eq!(m.output, "dense1");
        let e = Tiny.import(b"tiny 1\ninput x 2\ndense 2 2\nweights 1 0 0\nbias 0 0\n").unwrap_err();
        assert_eq!(e.to_string(), "line 4: `weights` of `dense 2 2` needs 4 numbers, found 3");
    }
}
